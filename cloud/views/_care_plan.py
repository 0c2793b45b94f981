"""Adherence to the care plan (pure): which planned measurement windows had a reading.

The care plan (:class:`cloud.rules.PatientSettings` ``care_plan``) asks for a metric once in each of
its daily windows of local time. A window is *expected* once it has ended; it is *done* when at
least one reading of its metric falls inside it (start inclusive, end exclusive).
"""

from __future__ import annotations

import bisect
import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloud.rules import CarePlanItem

__all__ = ["Adherence", "PlannedWindow", "adherence", "due_on", "planned_windows"]

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class PlannedWindow:
    """One planned measurement: ``metric`` between ``start_ns`` and ``end_ns`` (Unix ns) on local ``day``;
    ``label`` is the window as the plan writes it (``"07:00-10:00"``)."""

    metric: str
    day: dt.date
    label: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Adherence:
    """Windows that have ended (``expected``), those with a reading (``received``) and their ratio."""

    expected: int
    received: int

    @property
    def ratio(self) -> float | None:
        """``received / expected`` (None when nothing was expected)."""
        return self.received / self.expected if self.expected else None


def _instant(day: dt.date, minutes: int, zone: dt.tzinfo) -> int:
    # Wall-clock arithmetic: 07:00 is 07:00 on the day, also across a daylight-saving change.
    wall = dt.datetime.combine(day, dt.time(0)) + dt.timedelta(minutes=minutes)
    return round(wall.replace(tzinfo=zone).timestamp()) * _NS


def planned_windows(care_plan: Sequence[CarePlanItem], time_zone: str, first_day: dt.date,
                    last_day: dt.date) -> list[PlannedWindow]:
    """Every window of ``care_plan`` on the local days ``first_day`` to ``last_day`` (inclusive), in time order."""
    zone = zoneinfo.ZoneInfo(time_zone)
    out: list[PlannedWindow] = []
    day = first_day
    while day <= last_day:
        for item in care_plan:
            for window in item.windows:
                start, end = window.minutes
                out.append(PlannedWindow(item.metric, day, f"{window.start}-{window.end}",
                                         _instant(day, start, zone), _instant(day, end, zone)))
        day += dt.timedelta(days=1)
    out.sort(key=lambda w: (w.start_ns, w.metric, w.end_ns))
    return out


def _done(window: PlannedWindow, readings: Mapping[str, Sequence[int]]) -> bool:
    times = readings.get(window.metric, ())
    index = bisect.bisect_left(times, window.start_ns)
    return index < len(times) and times[index] < window.end_ns


def adherence(care_plan: Sequence[CarePlanItem], time_zone: str, readings: Mapping[str, Sequence[int]],
              start_ns: int, end_ns: int) -> Adherence | None:
    """Adherence over the windows lying wholly within ``start_ns`` to ``end_ns``; None without a care plan.

    ``readings``: metric -> sorted reading times (Unix ns).
    """
    if not care_plan:
        return None
    zone = zoneinfo.ZoneInfo(time_zone)
    first = dt.datetime.fromtimestamp(start_ns / _NS, zone).date()
    last = dt.datetime.fromtimestamp(end_ns / _NS, zone).date()
    windows = [w for w in planned_windows(care_plan, time_zone, first, last)
               if w.start_ns >= start_ns and w.end_ns <= end_ns]
    return Adherence(expected=len(windows), received=sum(_done(w, readings) for w in windows))


def due_on(care_plan: Sequence[CarePlanItem], time_zone: str, day: dt.date,
           readings: Mapping[str, Sequence[int]]) -> list[tuple[PlannedWindow, bool]]:
    """The windows of local ``day`` and whether each is done."""
    return [(w, _done(w, readings)) for w in planned_windows(care_plan, time_zone, day, day)]
