"""The Bluetooth Date Time field (7 bytes): a local wall-clock time without a zone.

Layout: year (uint16, 1582-9999, 0 = not known), month (1-12, 0 = not known), day (1-31,
0 = not known), hours (0-23), minutes (0-59), seconds (0-59).
"""

from __future__ import annotations

import calendar
import datetime as _dt
from dataclasses import dataclass

__all__ = ["DATE_TIME_SIZE", "DateTime", "date_time_problem"]

DATE_TIME_SIZE = 7
"""Bytes in a Date Time field."""

_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DateTime:
    """A device time stamp in the device's local time; zeros in year/month/day mean "not known"."""

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        problem = date_time_problem(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)
        if problem is not None:
            raise ValueError(problem[1])

    @property
    def is_known(self) -> bool:
        """True when year, month and day are all given, so the stamp names a real instant."""
        return self.year != 0 and self.month != 0 and self.day != 0

    def to_utc_ns(self, utc_offset_s: int, *, offset_minutes: int = 0, zone: _dt.tzinfo | None = None) -> int | None:
        """Unix time in ns (UTC) of this local time plus ``offset_minutes``; ``None`` if not known.

        ``utc_offset_s`` is local time minus UTC in seconds (e.g. 3600 for UTC+1). ``zone`` (a
        time zone with daylight saving rules), when given, decides the offset at the stamped time
        instead; an ambiguous hour (clocks going back) is read as the first of the two.
        """
        if not self.is_known:
            return None
        if zone is not None:
            local = _dt.datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds, tzinfo=zone)
            offset = local.utcoffset()
            utc_offset_s = 0 if offset is None else int(offset.total_seconds())
        days = _dt.date(self.year, self.month, self.day).toordinal() - _EPOCH_ORDINAL
        local_s = days * 86_400 + self.hours * 3_600 + self.minutes * 60 + self.seconds
        return (local_s + offset_minutes * 60 - utc_offset_s) * _NS_PER_S


_LIMITS = (
    ("year", 0, 0, 9999),
    ("month", 2, 0, 12),
    ("day", 3, 0, 31),
    ("hours", 4, 0, 23),
    ("minutes", 5, 0, 59),
    ("seconds", 6, 0, 59),
)


def date_time_problem(
    year: int, month: int, day: int, hours: int, minutes: int, seconds: int
) -> tuple[int, str] | None:
    """Return ``(byte offset within the field, message)`` for the first invalid part, or ``None``."""
    parts = (year, month, day, hours, minutes, seconds)
    for (name, offset, low, high), value in zip(_LIMITS, parts, strict=True):
        if not low <= value <= high:
            return offset, f"time stamp {name} {value} outside {low}..{high}"
    if year != 0 and year < 1582:
        return 0, f"time stamp year {year} outside 1582..9999 (0 = not known)"
    if year and month and day and day > calendar.monthrange(year, month)[1]:
        return 3, f"time stamp day {day} does not exist in {year:04d}-{month:02d}"
    return None
