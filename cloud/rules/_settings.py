"""A patient's own settings, as the doctor records them: what the rules need to judge that patient.

The settings are data the rules are handed (never read by them from anywhere): conditions (which
condition-specific rules apply), target ranges, per-rule overrides (threshold, durations, on/off),
the SpO2 scale NEWS2 uses, whether the patient breathes supplemental oxygen, the time zone
(for morning/evening protocols and care-plan windows) and the care plan (which measurements are
expected when). ``version`` names the revision; an alert records it with the rule's own version.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vitals.catalogue import CATALOGUE

__all__ = [
    "CONDITIONS",
    "CarePlanItem",
    "Condition",
    "PatientSettings",
    "TargetRange",
    "TimeWindow",
    "load_patient_settings",
    "local_minutes",
    "non_empty",
    "parse_clock",
]

Condition = Literal["hypertension", "heart_failure", "copd", "diabetes", "atrial_fibrillation"]
CONDITIONS: tuple[Condition, ...] = ("hypertension", "heart_failure", "copd", "diabetes", "atrial_fibrillation")


def parse_clock(text: str) -> int:
    """``"HH:MM"`` (local wall-clock time) as minutes after midnight; ``"24:00"`` is the end of the day."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"expected a time of day as HH:MM, not {text!r}")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"expected a time of day as HH:MM, not {text!r}")
    return value


def non_empty(value: tuple[Any, ...]) -> tuple[Any, ...]:
    """``value`` if it has at least one item (checked after the items, so a bad item is not also "too short")."""
    if not value:
        raise ValueError("expected at least one item")
    return value


def _known_metric(name: str) -> str:
    if name not in CATALOGUE:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    return name


class TimeWindow(BaseModel):
    """A daily window of local time, ``start`` inclusive to ``end`` exclusive (``"06:00"`` to ``"10:00"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if parse_clock(self.end) <= parse_clock(self.start):
            raise ValueError(f"window end {self.end} must be after its start {self.start} (same day)")
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        """``(start, end)`` in minutes after local midnight."""
        return parse_clock(self.start), parse_clock(self.end)


class CarePlanItem(BaseModel):
    """One expected measurement: ``metric`` taken once in each of ``windows`` every day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    windows: tuple[TimeWindow, ...]

    @field_validator("windows")
    @classmethod
    def _some(cls, value: tuple[TimeWindow, ...]) -> tuple[TimeWindow, ...]:
        return non_empty(value)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _known_metric(value)


class TargetRange(BaseModel):
    """The range a doctor wants a metric kept in, in the metric's catalogue unit (either end may be open)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TargetRange:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low:g} is above high {self.high:g}")
        return self


class PatientSettings(BaseModel):
    """One patient's settings (see the module docstring); every field has a safe default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field("0", min_length=1, max_length=64, description="the settings revision")
    conditions: frozenset[Condition] = frozenset()
    time_zone: str = "UTC"
    spo2_scale: Literal[1, 2] = Field(1, description="NEWS2 SpO2 scale; 2 only for a recorded hypercapnic target")
    on_oxygen: bool = Field(False, description="breathes supplemental oxygen (NEWS2 'air or oxygen')")
    targets: dict[str, TargetRange] = Field(default_factory=dict, description="metric -> target range")
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                             description="rule name -> fields overridden for this patient")
    care_plan: tuple[CarePlanItem, ...] = ()

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    @field_validator("targets")
    @classmethod
    def _target_metrics(cls, value: dict[str, TargetRange]) -> dict[str, TargetRange]:
        for name in value:
            _known_metric(name)
        return value

    @property
    def zone(self) -> dt.tzinfo:
        """The patient's time zone."""
        return zoneinfo.ZoneInfo(self.time_zone)


_ZONES: dict[str, dt.tzinfo] = {}


def local_minutes(time_ns: int, zone: str) -> tuple[dt.date, int]:
    """The local date and minutes after local midnight of ``time_ns`` (Unix ns) in ``zone``."""
    tz = _ZONES.get(zone)
    if tz is None:
        tz = _ZONES[zone] = zoneinfo.ZoneInfo(zone)
    local = dt.datetime.fromtimestamp(time_ns / 1e9, tz)
    return local.date(), local.hour * 60 + local.minute


def load_patient_settings(path: Path) -> dict[str, PatientSettings]:
    """Read a YAML mapping ``patient id -> settings``; mistakes are one-line ``UserFileError`` s with the line."""
    from device_profiles.userfile import read_yaml, validate

    document = read_yaml(path)
    data = {} if document.data is None else document.data
    return validate(dict[str, PatientSettings], data, file=str(path), document=document)

