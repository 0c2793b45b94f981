"""Patient scenarios: the YAML format, its loader and the shipped library.

A scenario names a patient (id, age, conditions), the devices at home (kind, device-profile id,
metrics, reading cadence, imperfections), baseline vitals, and a timeline of events (type, start,
duration, magnitude, ramp). Durations are seconds or strings such as ``90s``, ``30min``, ``6h``,
``2d``. The file is checked against a pydantic model (:mod:`simulators.scenarios._schema`); every
problem is reported as a :class:`ScenarioError` whose one-line message names the file, the line
(when read from a file) and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device_profiles._yamlmarks import MarkedDocument
from device_profiles.userfile import FileProblem, UserFileError, read_yaml_text, validate
from simulators.scenarios._schema import DeviceIn, EventIn, ScenarioFile, to_seconds

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

class ScenarioError(UserFileError):
    """A scenario file is missing, unreadable or invalid; the one-line message names the file, line and field."""


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a string like ``90s``, ``30min``, ``6h``, ``2d``, ``1d6h``.

    ``where`` names the field in error messages.
    """
    try:
        return to_seconds(value)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


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


_IMPERFECTION_NAMES = {"late_delay": "late_delay_s"}


def _device(entry: DeviceIn) -> DeviceSpec:
    imperfections: dict[str, float] = {}
    if entry.imperfections is not None:
        for key, value in entry.imperfections.model_dump(exclude_none=True).items():
            imperfections[_IMPERFECTION_NAMES.get(key, key)] = float(value)
    return DeviceSpec(
        id=entry.id,
        kind=entry.kind,
        profile=entry.profile,
        metrics=tuple(entry.metrics),
        interval_s=entry.interval,
        schedule_hours=tuple(entry.schedule),
        fs=entry.fs,
        imperfections=imperfections,
    )


def _event(entry: EventIn) -> TimelineEvent:
    return TimelineEvent(type=entry.type, start_s=entry.start, duration_s=entry.duration, magnitude=entry.magnitude,
                         ramp_s=entry.ramp, device=entry.device, mode=entry.mode)


def parse_scenario(data: Any, source: str = "<scenario>", *, document: MarkedDocument | None = None) -> Scenario:
    """Validate a scenario mapping (as loaded from YAML); ``source`` (and ``document``'s lines) name the place."""

    def problem(path: tuple[str | int, ...], message: str) -> FileProblem:
        return FileProblem(source, document.line_of(path) if document is not None else None, path, message)

    if not isinstance(data, dict):
        raise ScenarioError([problem((), "expected a mapping (name:, description:, patient:, devices: ...)")])
    try:
        model = validate(ScenarioFile, data, file=source, document=document)
    except UserFileError as exc:
        raise ScenarioError(exc.problems) from None
    problems: list[FileProblem] = []
    seen: dict[str, str] = {}
    device_ids: set[str] = set()
    for index, device in enumerate(model.devices):
        if device.id in device_ids:
            problems.append(problem(("devices", index, "id"), f"duplicate device id {device.id!r}"))
        device_ids.add(device.id)
        for metric in device.metrics:
            if metric in seen:
                problems.append(problem(("devices", index, "metrics"),
                                        f"{metric!r} is already reported by device {seen[metric]!r}"))
            seen.setdefault(metric, device.id)
    for index, event in enumerate(model.timeline or ()):
        if event.device is not None and event.device not in device_ids:
            problems.append(problem(("timeline", index, "device"), f"no device with id {event.device!r}; devices: "
                                    f"{', '.join(sorted(device_ids))}"))
    if problems:
        raise ScenarioError(problems)
    baseline = dict(BASELINE_DEFAULTS)
    if model.baseline is not None:
        baseline.update({key: float(value) for key, value in model.baseline.model_dump(exclude_none=True).items()})
    return Scenario(
        name=model.name,
        description=model.description.strip(),
        duration_s=model.duration,
        patient=Patient(model.patient.id, int(model.patient.age), tuple(model.patient.conditions)),
        baseline=baseline,
        devices=tuple(_device(entry) for entry in model.devices),
        timeline=tuple(_event(entry) for entry in model.timeline or ()),
    )


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
        document = read_yaml_text(text, source)
    except UserFileError as error:
        raise ScenarioError(error.problems) from None
    scenario = parse_scenario(document.data, source, document=document)
    if path.suffix not in (".yaml", ".yml") and scenario.name != text_path:
        raise ScenarioError([FileProblem(source, document.line_of(("name",)), ("name",),
                                         f"{scenario.name!r} does not match the file name")])
    return scenario
