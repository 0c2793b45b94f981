"""Judging the newest readings (pure): NEWS2 from them, whether a reading is low, normal or high, and
whether a device has fallen silent. The words shown to people belong to the web app; this gives data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from cloud.rules import PatientSettings, TargetRange
from cloud.rules.news2 import News2Score, news2_score

__all__ = [
    "NEWS2_METRICS",
    "REFERENCE_RANGES",
    "Latest",
    "ReadingStatus",
    "fresh",
    "news2_from_values",
    "reading_range",
    "reading_status",
    "silent_since_ns",
]

ReadingStatus = Literal["low", "normal", "high"]

REFERENCE_RANGES: dict[str, TargetRange] = {
    "spo2": TargetRange(low=94.0),
    "heart_rate": TargetRange(low=50.0, high=100.0),
    "pulse_rate": TargetRange(low=50.0, high=100.0),
    "respiratory_rate": TargetRange(low=12.0, high=20.0),
    "body_temperature": TargetRange(low=36.1, high=38.0),
    "bp_systolic": TargetRange(low=90.0, high=140.0),
    "bp_diastolic": TargetRange(low=60.0, high=90.0),
    "blood_glucose": TargetRange(low=3.9, high=10.0),
}
"""The usual adult range of a metric (catalogue units), used where the patient's settings set no target:
SpO2 at least 94 % (the usual target on air), pulse 50-100 /min, respiration 12-20 /min, temperature
36.1-38.0 degC (NEWS2's zero band), blood pressure 90-140 / 60-90 mmHg, glucose 3.9-10.0 mmol/L
(the consensus target range)."""

NEWS2_METRICS: dict[str, str] = {
    "respiratory_rate": "respiration_rate", "spo2": "spo2", "bp_systolic": "systolic_bp",
    "pulse_rate": "pulse", "heart_rate": "pulse", "body_temperature": "temperature",
}
"""Catalogue metric -> the NEWS2 parameter it gives (pulse from the oximeter or the ECG, the newer)."""


@dataclass(frozen=True, slots=True)
class Latest:
    """A metric's newest reading."""

    time_ns: int
    value: float


def fresh(latest: Mapping[str, Latest], now_ns: int, max_age_s: float) -> dict[str, Latest]:
    """Only the readings no older than ``max_age_s`` at ``now_ns``."""
    limit = now_ns - int(max_age_s * 1e9)
    return {metric: reading for metric, reading in latest.items() if reading.time_ns >= limit}


def news2_from_values(latest: Mapping[str, Latest], settings: PatientSettings,
                      min_parameters: int = 3) -> News2Score | None:
    """NEWS2 of the given readings (metric -> newest), scored with the patient's SpO2 scale and oxygen;
    None when fewer than ``min_parameters`` of the chart's parameters are among them (the air/oxygen
    parameter counts, as the settings record it)."""
    values: dict[str, float] = {}
    newest_pulse = -1
    for metric, reading in latest.items():
        parameter = NEWS2_METRICS.get(metric)
        if parameter is None or not math.isfinite(reading.value):
            continue
        if parameter == "pulse":
            if reading.time_ns <= newest_pulse:
                continue
            newest_pulse = reading.time_ns
        values[parameter] = reading.value
    if len(values) + 1 < min_parameters:
        return None
    return news2_score(respiration_rate=values.get("respiration_rate"), spo2=values.get("spo2"),
                       on_oxygen=settings.on_oxygen, systolic_bp=values.get("systolic_bp"),
                       pulse=values.get("pulse"), temperature=values.get("temperature"),
                       scale=settings.spo2_scale)


def reading_range(metric: str, settings: PatientSettings) -> tuple[str, TargetRange] | None:
    """The range a reading of ``metric`` is judged against: the patient's target (``"target"``), else the
    usual adult range (``"reference"``); None when there is neither."""
    target = settings.targets.get(metric)
    if target is not None:
        return "target", target
    reference = REFERENCE_RANGES.get(metric)
    return ("reference", reference) if reference is not None else None


def reading_status(metric: str, value: float, settings: PatientSettings) -> ReadingStatus:
    """``low`` or ``high`` when ``value`` is outside :func:`reading_range` (bounds inside), else ``normal``."""
    found = reading_range(metric, settings)
    if found is None:
        return "normal"
    _label, limits = found
    if limits.low is not None and value < limits.low:
        return "low"
    if limits.high is not None and value > limits.high:
        return "high"
    return "normal"


def silent_since_ns(last_reading_ns: int | None, now_ns: int, silent_after_s: float) -> int | None:
    """When a device went silent (its newest reading), if that is longer ago than ``silent_after_s``; else None."""
    if last_reading_ns is None:
        return None
    return last_reading_ns if now_ns - last_reading_ns > silent_after_s * 1e9 else None
