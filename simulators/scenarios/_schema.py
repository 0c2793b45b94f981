"""The scenario file's pydantic v2 model: what each field accepts, checked in one place.

:func:`simulators.scenarios.parse_scenario` validates a document against :class:`ScenarioFile`
(problems name the field and, for a file, the line), then checks what spans fields (device ids,
a metric reported twice, a timeline event naming a device) and builds the dataclasses.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from vitals.samples import is_identifier

__all__ = ["Duration", "ScenarioFile", "to_seconds"]

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|min|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|min|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_LONGEST_S = 3650 * 86400.0

Condition = Literal["hypertension", "heart_failure", "copd", "diabetes", "af"]
Metric = Literal["heart_rate", "pulse_rate", "spo2", "respiratory_rate", "bp_systolic", "bp_diastolic", "bp_mean",
                 "body_temperature", "body_weight", "blood_glucose", "ecg", "ppg"]
EventType = Literal["af", "tachycardia", "hypoxia", "tachypnoea", "fever", "weight_gain", "hypoglycaemia",
                    "hypertension", "pvc", "motion", "lead_off", "dropout"]


def to_seconds(value: Any) -> float:
    """Seconds from a number or text like ``90s``, ``30min``, ``6h``, ``2d``, ``1d6h``; ``ValueError`` if neither."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 90s, 30min, 6h, 2d or 1d6h, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.replace(" ", "")):
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in _DURATION_PART.findall(value.replace(" ", "")))
    else:
        raise ValueError(f"expected a duration like 90s, 30min, 6h, 2d or 1d6h, not {value!r}")
    if not seconds >= 0:
        raise ValueError(f"expected a duration of zero or more, not {value!r}")
    if seconds > _LONGEST_S:
        raise ValueError(f"expected a duration of at most 10 years (3650d), not {value!r}")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("expected a duration above zero")
    return seconds


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(f"expected an identifier (1-64 letters, digits, '.', '_' or '-'), not {value!r}")
    return value


def _clock_hours(value: Any) -> float:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a time of day like '07:30', not {value!r}")
    return int(match.group(1)) + int(match.group(2)) / 60.0


def _whole(value: float) -> float:
    if value != int(value):
        raise ValueError(f"expected a whole number of Hz, not {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(to_seconds)]
"""A duration in seconds (a number, or text like ``30min``)."""
PositiveDuration = Annotated[float, BeforeValidator(to_seconds), AfterValidator(_positive)]
Identifier = Annotated[str, Field(strict=True), AfterValidator(_identifier)]
Number = Annotated[float, Field(strict=True, ge=-1e6, le=1e6, allow_inf_nan=False)]
Probability = Annotated[float, Field(strict=True, ge=0, le=1)]
Amount = Annotated[float, Field(strict=True, ge=0, le=1e5)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientIn(_Strict):
    """``patient:``: ``id``, ``age`` (years), ``conditions`` and an optional ``sex``."""

    id: Identifier
    age: Annotated[float, Field(strict=True, ge=0, le=120)]
    conditions: list[Condition] = []
    sex: Annotated[str, Field(strict=True)] | None = None


class ImperfectionsIn(_Strict):
    """``imperfections:`` of a device (see :class:`simulators.scenarios.DeviceSpec`)."""

    clock_drift_ppm: Annotated[float, Field(strict=True, ge=-1e5, le=1e5)] | None = None
    duplicate_prob: Probability | None = None
    late_prob: Probability | None = None
    late_delay: Duration | None = None
    baseline_wander_mv: Amount | None = None
    powerline_mv: Amount | None = None
    powerline_hz: Amount | None = None
    emg_mv: Amount | None = None


class DeviceIn(_Strict):
    """One entry of ``devices:``."""

    id: Identifier
    kind: Identifier
    profile: Identifier
    metrics: Annotated[list[Metric], Field(min_length=1)]
    interval: PositiveDuration | None = None
    schedule: list[Annotated[float, BeforeValidator(_clock_hours)]] = []
    fs: Annotated[float, Field(strict=True, ge=1, le=2000), AfterValidator(_whole)] | None = None
    imperfections: ImperfectionsIn | None = None


class EventIn(_Strict):
    """One entry of ``timeline:``."""

    type: EventType
    start: Duration
    duration: PositiveDuration
    magnitude: Number | None = None
    ramp: Duration = 0.0
    device: Annotated[str, Field(strict=True)] | None = None
    mode: Literal["flat", "saturated"] = "flat"
    note: Annotated[str, Field(strict=True)] | None = None


class BaselineIn(_Strict):
    """``baseline:``: any of the patient's resting values (units as in ``BASELINE_DEFAULTS``)."""

    heart_rate: Annotated[float, Field(strict=True, ge=30, le=200)] | None = None
    heart_rate_std: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    lf_hf_ratio: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    respiratory_rate: Annotated[float, Field(strict=True, ge=4, le=60)] | None = None
    spo2: Annotated[float, Field(strict=True, ge=50, le=100)] | None = None
    bp_systolic: Annotated[float, Field(strict=True, ge=0, le=400)] | None = None
    bp_diastolic: Annotated[float, Field(strict=True, ge=0, le=300)] | None = None
    body_temperature: Annotated[float, Field(strict=True, ge=0, le=50)] | None = None
    body_weight: Annotated[float, Field(strict=True, ge=0, le=1000)] | None = None
    blood_glucose: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    meal_rise: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    pvc_per_min: Annotated[float, Field(strict=True, ge=0, le=60)] | None = None
    ecg_amplitude: Annotated[float, Field(strict=True, ge=0, le=10)] | None = None


class ScenarioFile(_Strict):
    """A scenario file as written (see docs/simulators.md)."""

    name: Identifier
    description: Annotated[str, Field(strict=True, min_length=1)]
    duration: PositiveDuration = 86400.0
    patient: PatientIn
    baseline: BaselineIn | None = None
    devices: Annotated[list[DeviceIn], Field(min_length=1)]
    timeline: list[EventIn] | None = None
