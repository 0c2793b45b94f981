"""FHIR search parameters -> a time range and a set of metrics (pure).

``date`` takes the FHIR prefixes ``eq`` (the default), ``ge``, ``gt``, ``le``, ``lt`` before a date of any
precision (``2024``, ``2024-05``, ``2024-05-01``, ``2024-05-01T10:00``, seconds and fractions, with a zone
or ``Z``; a time without a zone is read as UTC). A partial date stands for its whole span: ``ge2024-05``
is from May's first instant, ``le2024-05`` to May's last, ``eq2024-05-01`` the whole day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SearchError", "TimeRange", "parse_date_params", "parse_reference"]

_NS = 10**9
_MIN_NS = 0
_MAX_NS = 2**63 - 1
_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_PREFIXES = ("eq", "ge", "gt", "le", "lt")


class SearchError(ValueError):
    """A search parameter that cannot be understood; the message says which and why."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Times ``start_ns <= t < end_ns`` (ns since the epoch, UTC)."""

    start_ns: int = _MIN_NS
    end_ns: int = _MAX_NS

    @property
    def empty(self) -> bool:
        """True when no instant lies in the range."""
        return self.start_ns >= self.end_ns


def _ns(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


def _span(text: str) -> tuple[int, int]:
    """The instants a FHIR date of any precision stands for: ``[start, end)`` in ns."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise SearchError(f"date {text[:40]!r} is not a FHIR date (e.g. 2024-05-01 or 2024-05-01T10:00:00Z)")
    parts = match.groupdict()
    try:
        year = int(parts["year"])
        if parts["month"] is None:
            start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
            return _ns(start), _ns(start.replace(year=year + 1)) if year < 9999 else _MAX_NS
        month = int(parts["month"])
        if parts["day"] is None:
            start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            after = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC) if year < 9999 or month < 12 \
                else None
            return _ns(start), _ns(after) if after is not None else _MAX_NS
        day = dt.date(year, month, int(parts["day"]))
        if parts["hour"] is None:
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return _ns(start), _ns(start) + 86_400 * _NS
        zone = dt.UTC
        if parts["zone"] not in (None, "Z"):
            sign = 1 if parts["zone"][0] == "+" else -1
            hours, minutes = int(parts["zone"][1:3]), int(parts["zone"][4:6])
            zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        start = dt.datetime(day.year, day.month, day.day, int(parts["hour"]), int(parts["minute"]),
                            int(parts["second"] or 0), tzinfo=zone)
    except (ValueError, OverflowError) as exc:
        raise SearchError(f"date {text[:40]!r} is not a real date: {exc}") from None
    base = _ns(start)
    if parts["second"] is None:
        return base, base + 60 * _NS
    fraction = parts["fraction"]
    if fraction is None:
        return base, base + _NS
    unit = 10 ** (9 - len(fraction))
    start_ns = base + int(fraction) * unit
    return start_ns, start_ns + unit


def parse_date_params(values: Iterable[str]) -> TimeRange:
    """The time range every ``date`` parameter allows (they are ANDed, as FHIR says)."""
    start, end = _MIN_NS, _MAX_NS
    for raw in values:
        value = raw.strip()
        prefix = value[:2] if value[:2] in _PREFIXES else "eq"
        text = value[2:] if value[:2] in _PREFIXES else value
        if value[:2].isalpha() and value[:2] not in _PREFIXES:
            raise SearchError(f"date prefix {value[:2]!r} is not supported; use one of {', '.join(_PREFIXES)}")
        low, high = _span(text)
        if prefix == "eq":
            start, end = max(start, low), min(end, high)
        elif prefix == "ge":
            start = max(start, low)
        elif prefix == "gt":
            start = max(start, high)
        elif prefix == "le":
            end = min(end, high)
        else:  # lt
            end = min(end, low)
    return TimeRange(max(start, _MIN_NS), min(end, _MAX_NS))


def parse_reference(value: str, resource_type: str) -> str:
    """The id in a reference search value: ``Patient/p1``, a full URL ending so, or the bare ``p1``."""
    text = value.strip()
    marker = f"{resource_type}/"
    if marker in text:
        text = text.rsplit(marker, 1)[1]
    elif "/" in text:
        raise SearchError(f"{value[:80]!r} is not a reference to a {resource_type}")
    if not text:
        raise SearchError(f"an empty {resource_type} reference")
    return text
