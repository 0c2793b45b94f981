"""Patient scenarios: the YAML format, its loader and the shipped library.

A scenario names a patient (id, age, conditions), the devices at home (kind, device-profile id,
metrics, reading cadence, imperfections), baseline vitals, and a timeline of events (type, start,
duration, magnitude, ramp). Durations are seconds or strings such as ``90s``, ``30min``, ``6h``,
``2d``. Every problem is reported as a :class:`ScenarioError` naming the offending field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from vitals.samples import is_identifier

if TYPE_CHECKING:
    from simulators.scenarios.run import ScenarioRun

__all__ = [
    "BASELINE_DEFAULTS",
    "CONDITIONS",
    "EVENT_TYPES",
    "SUPPORTED_METRICS",
    "WAVEFORM_METRICS",
    "DeviceSpec",
    "Patient",
    "Scenario",
    "ScenarioError",
    "TimelineEvent",
    "list_scenarios",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
]

CONDITIONS = ("hypertension", "heart_failure", "copd", "diabetes", "af")

EVENT_TYPES: dict[str, str] = {
    # timeline type -> what its magnitude means
    "af": "mean ventricular rate in atrial fibrillation, /min (default 110)",
    "tachycardia": "heart-rate rise, /min",
    "hypoxia": "SpO2 fall, % points (heart and breathing rates rise with it)",
    "tachypnoea": "respiratory-rate rise, /min",
    "fever": "temperature rise, degC (heart and breathing rates rise with it)",
    "weight_gain": "weight gain (fluid), kg",
    "hypoglycaemia": "glucose fall, mmol/L",
    "hypertension": "systolic rise, mmHg (diastolic rises 60 % as much)",
    "pvc": "extra premature ventricular beats per minute",
    "motion": "motion-artifact size on ECG (mV) and PPG (a.u.)",
    "lead_off": "unused; 'mode' is flat or saturated",
    "dropout": "unused; the device named by 'device' (or every device) is silent",
}

NUMERIC_METRICS = (
    "heart_rate", "pulse_rate", "spo2", "respiratory_rate", "bp_systolic", "bp_diastolic", "bp_mean",
    "body_temperature", "body_weight", "blood_glucose",
)
WAVEFORM_METRICS = ("ecg", "ppg")
SUPPORTED_METRICS = NUMERIC_METRICS + WAVEFORM_METRICS

BASELINE_DEFAULTS: dict[str, float] = {
    "heart_rate": 70.0,  # /min
    "heart_rate_std": 3.0,  # /min
    "lf_hf_ratio": 1.5,
    "respiratory_rate": 15.0,  # /min
    "spo2": 97.0,  # %
    "bp_systolic": 125.0,  # mmHg
    "bp_diastolic": 80.0,  # mmHg
    "body_temperature": 36.8,  # degC
    "body_weight": 75.0,  # kg
    "blood_glucose": 5.5,  # mmol/L
    "meal_rise": 2.5,  # mmol/L per meal
    "pvc_per_min": 0.0,
    "ecg_amplitude": 1.0,  # mV
}

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|min|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|min|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid; the message names the field."""


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a string like ``90s``, ``30min``, ``6h``, ``2d``, ``1d6h``.

    ``where`` names the field in error messages.
    """
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.replace(" ", "")):
        parts = _DURATION_PART.findall(value.replace(" ", ""))
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    else:
        raise ScenarioError(f"{where}: expected a duration like 90s, 30min, 6h, 2d or 1d6h, got {value!r}")
    if seconds < 0:
        raise ScenarioError(f"{where}: must not be negative, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Patient:
    """Who is simulated: ``id`` (identifier), ``age`` (years), ``conditions`` (from CONDITIONS)."""

    id: str
    age: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceSpec:
    """A device at home. Numerics come every ``interval_s`` seconds, or daily at ``schedule_hours``
    (UTC hours) when set; waveforms at ``fs`` Hz. ``imperfections`` keys: clock_drift_ppm,
    duplicate_prob, late_prob, late_delay_s, baseline_wander_mv, powerline_mv, powerline_hz, emg_mv."""

    id: str
    kind: str
    profile: str
    metrics: tuple[str, ...]
    interval_s: float | None = None
    schedule_hours: tuple[float, ...] = ()
    fs: float | None = None
    imperfections: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelineEvent:
    """One timeline entry: ``type`` from EVENT_TYPES over [start_s, start_s + duration_s)."""

    type: str
    start_s: float
    duration_s: float
    magnitude: float | None = None
    ramp_s: float = 0.0
    device: str | None = None
    mode: str = "flat"

    @property
    def end_s(self) -> float:
        """End of the window, s."""
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; :meth:`start` runs it."""

    name: str
    description: str
    duration_s: float
    patient: Patient
    baseline: dict[str, float]
    devices: tuple[DeviceSpec, ...]
    timeline: tuple[TimelineEvent, ...]

    def start(self, start_ns: int, seed: int, *, waveforms: bool = False) -> ScenarioRun:
        """Begin a run whose time 0 is ``start_ns`` (ns since the Unix epoch, UTC).

        ``waveforms`` chooses whether :meth:`ScenarioRun.advance` renders ECG/PPG by default.
        """
        from simulators.scenarios.run import ScenarioRun

        return ScenarioRun(self, start_ns, seed, waveforms=waveforms)

    def device_for(self, metric: str) -> DeviceSpec | None:
        """The device that reports ``metric``, if any."""
        for device in self.devices:
            if metric in device.metrics:
                return device
        return None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric some device reports, in device order."""
        return tuple(m for device in self.devices for m in device.metrics)


_IMPERFECTIONS = {
    "clock_drift_ppm", "duplicate_prob", "late_prob", "late_delay", "baseline_wander_mv", "powerline_mv",
    "powerline_hz", "emg_mv",
}


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ScenarioError(f"{where}: keys must be strings, got {key!r}")
    return value


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ScenarioError(f"{where}.{key}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ScenarioError(f"{where}.{key}: required field is missing")
    return data[key]


def _number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{where}: expected a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ScenarioError(f"{where}: {value!r} is outside [{low}, {high}]")
    return float(value)


def _identifier(value: Any, where: str) -> str:
    if not is_identifier(value):
        raise ScenarioError(f"{where}: expected an identifier (letters, digits, _.-), got {value!r}")
    return str(value)


def _parse_patient(value: Any) -> Patient:
    data = _mapping(value, "patient")
    _only(data, {"id", "age", "conditions", "sex"}, "patient")
    conditions = data.get("conditions", [])
    if not isinstance(conditions, list):
        raise ScenarioError("patient.conditions: expected a list")
    for i, condition in enumerate(conditions):
        if condition not in CONDITIONS:
            raise ScenarioError(f"patient.conditions[{i}]: {condition!r} is not one of {', '.join(CONDITIONS)}")
    age = _number(_require(data, "age", "patient"), "patient.age", 0, 120)
    return Patient(_identifier(_require(data, "id", "patient"), "patient.id"), int(age), tuple(conditions))


def _parse_baseline(value: Any) -> dict[str, float]:
    data = _mapping(value if value is not None else {}, "baseline")
    _only(data, set(BASELINE_DEFAULTS), "baseline")
    merged = dict(BASELINE_DEFAULTS)
    for key, item in data.items():
        merged[key] = _number(item, f"baseline.{key}", 0.0)
    if not 30.0 <= merged["heart_rate"] <= 200.0:
        raise ScenarioError("baseline.heart_rate: must lie in [30, 200] /min")
    if not 50.0 <= merged["spo2"] <= 100.0:
        raise ScenarioError("baseline.spo2: must lie in [50, 100] %")
    if not 4.0 <= merged["respiratory_rate"] <= 60.0:
        raise ScenarioError("baseline.respiratory_rate: must lie in [4, 60] /min")
    return merged


def _parse_clock(value: Any, where: str) -> float:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ScenarioError(f"{where}: expected a time of day like '07:30', got {value!r}")
    return int(match.group(1)) + int(match.group(2)) / 60.0


def _parse_device(value: Any, where: str) -> DeviceSpec:
    data = _mapping(value, where)
    _only(data, {"id", "kind", "profile", "metrics", "interval", "schedule", "fs", "imperfections"}, where)
    metrics = _require(data, "metrics", where)
    if not isinstance(metrics, list) or not metrics:
        raise ScenarioError(f"{where}.metrics: expected a non-empty list of metric names")
    for i, metric in enumerate(metrics):
        if metric not in SUPPORTED_METRICS:
            raise ScenarioError(
                f"{where}.metrics[{i}]: {metric!r} is not simulated (supported: {', '.join(SUPPORTED_METRICS)})"
            )
    interval = data.get("interval")
    interval_s = None if interval is None else parse_duration(interval, f"{where}.interval")
    if interval_s is not None and interval_s <= 0:
        raise ScenarioError(f"{where}.interval: must be positive")
    schedule = data.get("schedule", [])
    if not isinstance(schedule, list):
        raise ScenarioError(f"{where}.schedule: expected a list of times of day like '07:30'")
    hours = tuple(_parse_clock(item, f"{where}.schedule[{i}]") for i, item in enumerate(schedule))
    fs = data.get("fs")
    fs_hz = None if fs is None else _number(fs, f"{where}.fs", 1.0, 2000.0)
    if fs_hz is not None and fs_hz != int(fs_hz):
        raise ScenarioError(f"{where}.fs: must be a whole number of Hz, got {fs!r}")
    raw = _mapping(data.get("imperfections", {}) or {}, f"{where}.imperfections")
    _only(raw, _IMPERFECTIONS, f"{where}.imperfections")
    imperfections: dict[str, float] = {}
    for key, item in raw.items():
        name = f"{where}.imperfections.{key}"
        if key == "late_delay":
            imperfections["late_delay_s"] = parse_duration(item, name)
        elif key.endswith("_prob"):
            imperfections[key] = _number(item, name, 0.0, 1.0)
        else:
            imperfections[key] = _number(item, name, -1e5 if key == "clock_drift_ppm" else 0.0, 1e5)
    return DeviceSpec(
        id=_identifier(_require(data, "id", where), f"{where}.id"),
        kind=_identifier(_require(data, "kind", where), f"{where}.kind"),
        profile=_identifier(_require(data, "profile", where), f"{where}.profile"),
        metrics=tuple(metrics),
        interval_s=interval_s,
        schedule_hours=hours,
        fs=fs_hz,
        imperfections=imperfections,
    )


def _parse_event(value: Any, where: str, device_ids: set[str]) -> TimelineEvent:
    data = _mapping(value, where)
    _only(data, {"type", "start", "duration", "magnitude", "ramp", "device", "mode", "note"}, where)
    kind = _require(data, "type", where)
    if kind not in EVENT_TYPES:
        raise ScenarioError(f"{where}.type: {kind!r} is not one of {', '.join(EVENT_TYPES)}")
    magnitude = data.get("magnitude")
    device = data.get("device")
    if device is not None and device not in device_ids:
        raise ScenarioError(f"{where}.device: no device with id {device!r}")
    mode = data.get("mode", "flat")
    if mode not in ("flat", "saturated"):
        raise ScenarioError(f"{where}.mode: expected 'flat' or 'saturated', got {mode!r}")
    duration = parse_duration(_require(data, "duration", where), f"{where}.duration")
    if duration <= 0:
        raise ScenarioError(f"{where}.duration: must be positive")
    return TimelineEvent(
        type=kind,
        start_s=parse_duration(_require(data, "start", where), f"{where}.start"),
        duration_s=duration,
        magnitude=None if magnitude is None else _number(magnitude, f"{where}.magnitude"),
        ramp_s=parse_duration(data.get("ramp", 0), f"{where}.ramp"),
        device=device,
        mode=mode,
    )


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a scenario mapping (as loaded from YAML); ``source`` prefixes error messages."""
    try:
        root = _mapping(data, "scenario")
        _only(root, {"name", "description", "duration", "patient", "baseline", "devices", "timeline"}, "scenario")
        name = _identifier(_require(root, "name", "scenario"), "name")
        description = _require(root, "description", "scenario")
        if not isinstance(description, str) or not description.strip():
            raise ScenarioError("description: expected a one-line text")
        duration_s = parse_duration(root.get("duration", "1d"), "duration")
        if duration_s <= 0:
            raise ScenarioError("duration: must be positive")
        devices_raw = _require(root, "devices", "scenario")
        if not isinstance(devices_raw, list) or not devices_raw:
            raise ScenarioError("devices: expected a non-empty list")
        devices = tuple(_parse_device(item, f"devices[{i}]") for i, item in enumerate(devices_raw))
        seen: dict[str, str] = {}
        device_ids: set[str] = set()
        for i, device in enumerate(devices):
            if device.id in device_ids:
                raise ScenarioError(f"devices[{i}].id: duplicate device id {device.id!r}")
            device_ids.add(device.id)
            for metric in device.metrics:
                if metric in seen:
                    raise ScenarioError(
                        f"devices[{i}].metrics: {metric!r} is already reported by device {seen[metric]!r}"
                    )
                seen[metric] = device.id
        timeline_raw = root.get("timeline", []) or []
        if not isinstance(timeline_raw, list):
            raise ScenarioError("timeline: expected a list of events")
        ids = {d.id for d in devices}
        timeline = tuple(_parse_event(item, f"timeline[{i}]", ids) for i, item in enumerate(timeline_raw))
        return Scenario(
            name=name,
            description=description.strip(),
            duration_s=duration_s,
            patient=_parse_patient(_require(root, "patient", "scenario")),
            baseline=_parse_baseline(root.get("baseline")),
            devices=devices,
            timeline=timeline,
        )
    except ScenarioError as error:
        raise ScenarioError(f"{source}: {error}") from None


def _library() -> Any:
    return resources.files("simulators.scenarios") / "library"


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped in the library, sorted."""
    return sorted(
        entry.name.removesuffix(".yaml") for entry in _library().iterdir() if entry.name.endswith(".yaml")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a library scenario by name, or a scenario file by path; raises :class:`ScenarioError`."""
    text_path = str(name_or_path)
    path = Path(text_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        source = path.name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ScenarioError(f"{text_path}: cannot read scenario file: {error.strerror}") from None
    else:
        entry = _library() / f"{text_path}.yaml"
        if not entry.is_file():
            known = ", ".join(list_scenarios())
            raise ScenarioError(f"unknown scenario {text_path!r}; library scenarios: {known}")
        source = f"{text_path}.yaml"
        text = entry.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{source}: not valid YAML: {error}") from None
    scenario = parse_scenario(data, source)
    if path.suffix not in (".yaml", ".yml") and scenario.name != text_path:
        raise ScenarioError(f"{source}: name: {scenario.name!r} does not match the file name")
    return scenario
