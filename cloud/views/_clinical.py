"""Summaries of one patient's readings for the patient page (pure): blood pressure by morning and evening,
glucose time in ranges and its ambulatory profile, weight change.

Readings come in as ``(time_ns, value)`` pairs in catalogue units; local times use the patient's
time zone (an IANA name).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GLUCOSE_BANDS",
    "MG_DL_PER_MMOL_L",
    "AgpBin",
    "BpAverage",
    "BpSummary",
    "WeightChange",
    "ambulatory_glucose_profile",
    "blood_pressure_summary",
    "glucose_band",
    "mmol_to_mg_dl",
    "time_in_ranges",
    "weight_change",
]

Reading = tuple[int, float]

MG_DL_PER_MMOL_L = 18.0182
"""mg/dL of glucose per mmol/L (molar mass of glucose 180.16 g/mol)."""

GLUCOSE_BANDS: tuple[tuple[str, int | None, int | None], ...] = (
    ("very_low", None, 53),
    ("low", 54, 69),
    ("in_range", 70, 180),
    ("high", 181, 250),
    ("very_high", 251, None),
)
"""The international consensus on time in ranges (Battelino et al., Diabetes Care 2019), in whole mg/dL:
``(name, lowest, highest)``, both inclusive."""

_NS = 1_000_000_000


def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _local(time_ns: int, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(time_ns / _NS, zone)


@dataclass(frozen=True, slots=True)
class BpAverage:
    """Mean systolic and diastolic pressure (mmHg, to 0.1) and the number of readings of each."""

    systolic: float | None
    diastolic: float | None
    n: int
    n_diastolic: int


@dataclass(frozen=True, slots=True)
class BpSummary:
    """Averages of the morning (local time before noon), the evening (from noon) and the whole period."""

    am: BpAverage | None
    pm: BpAverage | None
    all: BpAverage


def _mean(values: Sequence[float]) -> float | None:
    return round(math.fsum(values) / len(values), 1) if values else None


def _average(systolic: Sequence[float], diastolic: Sequence[float]) -> BpAverage | None:
    if not systolic and not diastolic:
        return None
    return BpAverage(_mean(systolic), _mean(diastolic), len(systolic), len(diastolic))


def blood_pressure_summary(systolic: Iterable[Reading], diastolic: Iterable[Reading],
                           time_zone: str) -> BpSummary | None:
    """Morning/evening averages of blood pressure readings; None when there is no reading at all.

    Morning is local time 00:00-11:59, evening 12:00-23:59, as home blood pressure protocols split
    the readings taken on waking and before bed.
    """
    zone = _zone(time_zone)
    halves: dict[str, tuple[list[float], list[float]]] = {"am": ([], []), "pm": ([], [])}
    for index, readings in enumerate((systolic, diastolic)):
        for time_ns, value in readings:
            half = "am" if _local(time_ns, zone).hour < 12 else "pm"
            halves[half][index].append(value)
    every_systolic = halves["am"][0] + halves["pm"][0]
    every_diastolic = halves["am"][1] + halves["pm"][1]
    whole = _average(every_systolic, every_diastolic)
    if whole is None:
        return None
    return BpSummary(am=_average(*halves["am"]), pm=_average(*halves["pm"]), all=whole)


def mmol_to_mg_dl(value: float) -> float:
    """A glucose concentration in mmol/L as mg/dL."""
    return value * MG_DL_PER_MMOL_L


def glucose_band(mg_dl: float) -> str:
    """The consensus band of a glucose value; the value is first rounded to a whole mg/dL, as meters show it."""
    whole = math.floor(mg_dl + 0.5)
    for name, _low, high in GLUCOSE_BANDS:
        if high is None or whole <= high:
            return name
    raise AssertionError("unreachable: the last band is open")


def time_in_ranges(values_mg_dl: Iterable[float]) -> dict[str, float] | None:
    """The fraction of readings in each consensus band (summing to 1), or None without readings.

    Readings of a continuous glucose monitor come at a fixed period, so the fraction of readings is
    the fraction of time.
    """
    counts = {name: 0 for name, _low, _high in GLUCOSE_BANDS}
    total = 0
    for value in values_mg_dl:
        counts[glucose_band(value)] += 1
        total += 1
    if total == 0:
        return None
    return {name: count / total for name, count in counts.items()}


@dataclass(frozen=True, slots=True)
class AgpBin:
    """One time-of-day bin of the ambulatory glucose profile: its start (minutes after local midnight), the
    number of readings, and their 10th, 25th, 50th, 75th and 90th percentiles (mg/dL, to 0.1)."""

    minute: int
    n: int
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float


def ambulatory_glucose_profile(readings_mg_dl: Iterable[Reading], time_zone: str,
                               bin_minutes: int = 60) -> list[AgpBin]:
    """Percentiles of glucose by local time of day, all days laid over one another; bins without readings
    are left out. ``bin_minutes`` must divide a day."""
    if bin_minutes < 1 or (24 * 60) % bin_minutes:
        raise ValueError(f"bin_minutes must divide 1440, not {bin_minutes}")
    zone = _zone(time_zone)
    bins: dict[int, list[float]] = {}
    for time_ns, value in readings_mg_dl:
        local = _local(time_ns, zone)
        minute = (local.hour * 60 + local.minute) // bin_minutes * bin_minutes
        bins.setdefault(minute, []).append(value)
    out = []
    for minute in sorted(bins):
        values = np.asarray(bins[minute], dtype=float)
        p10, p25, p50, p75, p90 = (round(float(p), 1) for p in np.percentile(values, [10, 25, 50, 75, 90]))
        out.append(AgpBin(minute, len(values), p10, p25, p50, p75, p90))
    return out


@dataclass(frozen=True, slots=True)
class WeightChange:
    """The newest weight (kg) and its change since 1, 3 and 7 days before (None where no weighing that day)."""

    latest: float
    latest_at_ns: int
    change_1d: float | None
    change_3d: float | None
    change_7d: float | None


def weight_change(readings: Iterable[Reading], time_zone: str) -> WeightChange | None:
    """The newest weight and its change over 1, 3 and 7 days; None without readings.

    The change over N days compares the newest reading with the reading of the local day N days
    earlier that is nearest in time to exactly N days before it (weighings come at about the same
    hour each day, but not to the minute).
    """
    ordered = sorted(readings)
    if not ordered:
        return None
    zone = _zone(time_zone)
    latest_ns, latest = ordered[-1]
    latest_day = _local(latest_ns, zone).date()
    by_day: dict[dt.date, list[Reading]] = {}
    for reading in ordered:
        by_day.setdefault(_local(reading[0], zone).date(), []).append(reading)

    def change(days: int) -> float | None:
        candidates = by_day.get(latest_day - dt.timedelta(days=days))
        if not candidates:
            return None
        target = latest_ns - days * 86_400 * _NS
        _time, earlier = min(candidates, key=lambda r: (abs(r[0] - target), r[0]))
        return round(latest - earlier, 2)

    return WeightChange(latest, latest_ns, change(1), change(3), change(7))
