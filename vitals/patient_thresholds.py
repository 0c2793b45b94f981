"""The cloud's per-patient thresholds for a gateway: a retained message on ``vb/v1/{gateway}/cmd/config``.

The cloud publishes, retained and at QoS 1, the threshold values its rules use for every patient of
a gateway; the gateway's compression then keeps every crossing of those values exactly (the reading
that crosses, at its time and value), so a rule tuned to, say, SpO2 92 % never judges a reading the
compression moved. A new message replaces the previous one whole: a patient or metric left out has
no cloud thresholds any more.

Layout (UTF-8 JSON, at most :data:`MAX_CONFIG_BYTES`)::

    {"v": 1, "revision": 42,
     "patients": {"patient-001": {"spo2": [88, 92], "heart_rate": [40, 50, 120, 130]}}}

``revision`` is the cloud's counter of this gateway's settings (it only grows; the gateway logs
it and skips a message identical to the one in force). Each metric is a numeric catalogue metric,
its levels are finite numbers inside the metric's plausible range, in the catalogue unit; a level
has no direction: the gateway keeps whatever crosses it either way, and a reading that lands exactly
on it. :func:`build_threshold_config` (the cloud's side) turns a mapping into these bytes;
:func:`decode_threshold_config` accepts untrusted bytes and raises only :class:`ThresholdConfigError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import is_identifier

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_LEVELS",
    "MAX_PATIENTS",
    "THRESHOLD_CONFIG_VERSION",
    "ThresholdConfig",
    "ThresholdConfigError",
    "build_threshold_config",
    "decode_threshold_config",
]

THRESHOLD_CONFIG_VERSION = 1
MAX_CONFIG_BYTES = 1 << 18
"""Largest message accepted (256 KiB: far beyond a household's patients)."""
MAX_PATIENTS = 256
"""Patients one message may name (a gateway serves a household)."""
MAX_LEVELS = 16
"""Levels per patient and metric."""


class ThresholdConfigError(ValueError):
    """A threshold message that cannot be used. The only exception the functions here raise."""


@dataclass(frozen=True)
class ThresholdConfig:
    """Thresholds in force: per patient and metric, the sorted distinct levels (catalogue unit)."""

    revision: int
    patients: Mapping[str, Mapping[str, tuple[float, ...]]] = field(default_factory=dict)

    def levels_for(self, patient: str) -> dict[str, tuple[float, ...]]:
        """The levels of ``patient`` by metric (empty when the cloud sent none for them)."""
        return dict(self.patients.get(patient, {}))


def _patient_id(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(f"patient id {value[:80]!r} is not 1-64 letters, digits, '.', '_' or '-'")
    return value


def _metric_levels(value: dict[str, list[float]]) -> dict[str, list[float]]:
    for name, levels in value.items():
        metric = CATALOGUE.get(name)
        if metric is None or metric.kind is not MetricKind.NUMERIC:
            raise ValueError(f"{name[:80]!r} is not a numeric catalogue metric")
        low, high = metric.plausible
        for level in levels:
            if not low <= level <= high:
                raise ValueError(f"{name}: level {level:g} lies outside the plausible range {low:g}..{high:g} "
                                 f"{metric.unit}")
    return value


_Levels = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1, max_length=MAX_LEVELS)]
_PatientId = Annotated[str, AfterValidator(_patient_id)]
_MetricMap = Annotated[dict[str, _Levels], AfterValidator(_metric_levels)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    v: Literal[1]
    revision: Annotated[int, Field(ge=0, le=(1 << 53) - 1)]
    patients: Annotated[dict[_PatientId, _MetricMap], Field(max_length=MAX_PATIENTS)]


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        # A key of the untrusted message may hold anything, a line break included: show it quoted, on one line.
        where = ".".join(str(p) if is_identifier(str(p)) or isinstance(p, int) or p == "[key]" else repr(str(p))
                         for p in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _config(message: _Message) -> ThresholdConfig:
    return ThresholdConfig(
        revision=message.revision,
        patients={patient: {metric: tuple(sorted(set(levels))) for metric, levels in metrics.items()}
                  for patient, metrics in message.patients.items()},
    )


def decode_threshold_config(payload: bytes) -> ThresholdConfig:
    """Decode untrusted message bytes; raises :class:`ThresholdConfigError` naming what is wrong."""
    if not isinstance(payload, bytes | bytearray | memoryview) or not 0 < len(payload) <= MAX_CONFIG_BYTES:
        raise ThresholdConfigError(f"a threshold message is 1..{MAX_CONFIG_BYTES} bytes of JSON")
    try:
        raw = json.loads(bytes(payload))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ThresholdConfigError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ThresholdConfigError(f"expected a JSON object, got {type(raw).__name__}")
    if raw.get("v") != THRESHOLD_CONFIG_VERSION:
        raise ThresholdConfigError(f"unsupported threshold message version {str(raw.get('v'))[:20]!r}")
    try:
        return _config(_Message.model_validate(raw))
    except ValidationError as exc:
        raise ThresholdConfigError(_describe(exc)) from None


def build_threshold_config(thresholds: Mapping[str, Mapping[str, Iterable[float]]], *, revision: int) -> bytes:
    """The message for a gateway whose patients have ``thresholds`` (patient -> metric -> levels).

    Pure; for the cloud to publish retained on ``vb/v1/{gateway}/cmd/config``. Patients or metrics
    with no levels are left out. Raises :class:`ThresholdConfigError` for anything the gateway would
    refuse (unknown or waveform metric, a level outside the plausible range or not finite, too many
    levels or patients, a bad id or revision).
    """
    patients: dict[str, dict[str, list[float]]] = {}
    try:
        for patient, metrics in thresholds.items():
            levels = {metric: sorted({float(v) for v in values}) for metric, values in metrics.items()}
            levels = {metric: values for metric, values in levels.items() if values}
            if levels:
                patients[patient] = levels
    except (TypeError, ValueError, AttributeError) as exc:
        raise ThresholdConfigError(f"thresholds must map patient -> metric -> numbers: {exc}") from None
    if any(not math.isfinite(v) for metrics in patients.values() for values in metrics.values() for v in values):
        raise ThresholdConfigError("threshold levels must be finite numbers")
    raw: dict[str, Any] = {"v": THRESHOLD_CONFIG_VERSION, "revision": revision, "patients": patients}
    try:
        _Message.model_validate(raw)
    except ValidationError as exc:
        raise ThresholdConfigError(_describe(exc)) from None
    payload = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    if len(payload) > MAX_CONFIG_BYTES:
        raise ThresholdConfigError(f"the message would be {len(payload)} bytes, over {MAX_CONFIG_BYTES}")
    return payload
