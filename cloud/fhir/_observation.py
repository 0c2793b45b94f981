"""Stored values -> FHIR R4 ``Observation`` resources (pure: values in, dicts out).

The shapes follow the HL7 Personal Health Device IG (PhdNumericObservation, PhdCompoundNumericObservation,
PhdRtsaObservation) and, where a metric's LOINC code is the one a FHIR vital-signs profile fixes, that
profile too. Every Observation carries a deterministic identifier (a UUID of the device, metric, time and
value) and the same UUID as its id, so a receiver that imports the same data twice (by ``PUT`` or by a
conditional create on the identifier) keeps one copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cloud.fhir._codes import (
    BP_METRICS,
    BP_PANEL_LOINC,
    BP_PANEL_MDC,
    LOINC,
    MDC,
    PHD_COMPOUND,
    QUALITY_SYSTEM,
    UCUM,
    URI_SYSTEM,
    VITAL_SIGNS_PROFILES,
    coding_for,
    deterministic_uuid,
    profiles_for,
)
from vitals.catalogue import CATALOGUE, Metric, MetricKind
from vitals.samples import Quality

__all__ = [
    "VITAL_SIGNS_CATEGORY",
    "StoredValue",
    "WaveformWindow",
    "fhir_id",
    "fhir_instant",
    "numeric_observation",
    "observations_from_values",
    "waveform_observation",
]

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

VITAL_SIGNS_CATEGORY: list[dict[str, Any]] = [{
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
                "display": "Vital Signs"}],
    "text": "Vital Signs",
}]


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One stored numeric value: whose, from which device, which metric, when (ns, UTC), how clean."""

    patient: str
    device: str
    metric: str
    time_ns: int
    value: float
    quality: int = 0


@dataclass(frozen=True, slots=True)
class WaveformWindow:
    """A stretch of one waveform from one device: sample times (ns) and values, oldest first."""

    patient: str
    device: str
    metric: str
    times_ns: Sequence[int]
    values: Sequence[float]


def fhir_id(text: str) -> str:
    """The FHIR resource id of a VitalBridge patient, device or gateway id.

    VitalBridge ids may hold ``_``, which a FHIR id may not: such an id becomes a UUID of itself (the server
    finds it again by comparing against the caller's own patients and devices).
    """
    return text if _FHIR_ID.fullmatch(text) else deterministic_uuid("id", text)


def fhir_instant(time_ns: int) -> str:
    """``time_ns`` (ns since the epoch, UTC) as a FHIR ``dateTime`` with microseconds where they are not zero."""
    moment = _EPOCH + dt.timedelta(microseconds=time_ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _base(resource_id: str, patient: str, device: str, time_ns: int, quality: int,
          profiles: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"profile": profiles}
    tags = [{"system": QUALITY_SYSTEM, "code": flag.name, "display": flag.name.replace("_", " ").lower()}
            for flag in Quality if flag.value and quality & flag.value and flag.name is not None]
    if tags:
        meta["tag"] = tags
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "meta": meta,
        "identifier": [{"system": URI_SYSTEM, "value": f"urn:uuid:{resource_id}"}],
        "status": "final",
        "category": VITAL_SIGNS_CATEGORY,
        "subject": {"reference": f"Patient/{fhir_id(patient)}"},
        "effectiveDateTime": fhir_instant(time_ns),
        "device": {"reference": f"Device/{fhir_id(device)}"},
    }


def numeric_observation(value: StoredValue) -> dict[str, Any]:
    """One numeric value as an Observation with ``valueQuantity`` in the metric's UCUM unit."""
    metric = CATALOGUE[value.metric]
    resource_id = deterministic_uuid("observation", value.device, value.metric, value.time_ns, float(value.value))
    resource = _base(resource_id, value.patient, value.device, value.time_ns, value.quality, profiles_for(metric))
    resource["code"] = {"coding": coding_for(metric), "text": metric.label}
    resource["valueQuantity"] = _quantity(float(value.value), metric.unit)
    return resource


def _bp_panel(parts: Sequence[StoredValue]) -> dict[str, Any]:
    first = parts[0]
    ordered = sorted(parts, key=lambda part: BP_METRICS.index(part.metric))
    key = [(part.metric, float(part.value)) for part in ordered]
    resource_id = deterministic_uuid("observation", first.device, "bp_panel", first.time_ns, key)
    quality = 0
    for part in parts:
        quality |= part.quality
    resource = _base(resource_id, first.patient, first.device, first.time_ns, quality,
                     [PHD_COMPOUND, VITAL_SIGNS_PROFILES["bp_panel"]])
    resource["code"] = {"coding": [
        {"system": LOINC, "code": BP_PANEL_LOINC, "display": "Blood pressure panel with all children optional"},
        {"system": MDC, "code": str(BP_PANEL_MDC), "display": "MDC_PRESS_BLD_NONINV"},
    ], "text": "Blood pressure"}
    resource["component"] = [
        {"code": {"coding": coding_for(CATALOGUE[part.metric]), "text": CATALOGUE[part.metric].label},
         "valueQuantity": _quantity(float(part.value), CATALOGUE[part.metric].unit)}
        for part in ordered
    ]
    return resource


def observations_from_values(values: Iterable[StoredValue]) -> list[dict[str, Any]]:
    """Observations of ``values`` in their order; blood pressure parts of one device at one time become one panel.

    A systolic and a diastolic reading sharing device and time (and a mean, when there is one) are one
    reading of one cuff: they become a 85354-9 panel with components. A lone part stays a single Observation.
    The panel takes the place of its first part in the order.
    """
    items: list[StoredValue | list[StoredValue]] = []
    panels: dict[tuple[str, str, int], list[StoredValue]] = {}
    for value in values:
        if value.metric in BP_METRICS:
            key = (value.patient, value.device, value.time_ns)
            group = panels.get(key)
            if group is None or any(part.metric == value.metric for part in group):
                group = panels[key] = []
                items.append(group)
            group.append(value)
        else:
            items.append(value)
    resources = []
    for item in items:
        if isinstance(item, StoredValue):
            resources.append(numeric_observation(item))
        elif {part.metric for part in item} >= {"bp_systolic", "bp_diastolic"}:
            resources.append(_bp_panel(item))
        else:
            resources.extend(numeric_observation(part) for part in item)
    return resources


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def waveform_observation(window: WaveformWindow) -> dict[str, Any]:
    """A stretch of a waveform as one Observation with ``valueSampledData`` (PhdRtsaObservation).

    The sampling period is the median spacing of the samples; a missing sample on that grid is written
    ``E`` (no valid value), so a gap stays visible. ``window`` must hold at least one sample.
    """
    metric: Metric = CATALOGUE[window.metric]
    if metric.kind is not MetricKind.WAVEFORM:
        raise ValueError(f"{window.metric} is not a waveform")
    if not window.times_ns or len(window.times_ns) != len(window.values):
        raise ValueError("a waveform window needs as many times as values, and at least one")
    times = list(window.times_ns)
    steps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    period_ns = steps[len(steps) // 2] if steps else int(1e9 / metric.max_hz)
    slots: dict[int, float] = {}
    for time_ns, value in zip(times, window.values, strict=True):
        slots.setdefault(round((time_ns - times[0]) / period_ns), float(value))
    data = " ".join(_number(slots[index]) if index in slots else "E" for index in range(max(slots) + 1))
    digest = hashlib.sha256(data.encode()).hexdigest()
    resource_id = deterministic_uuid("waveform", window.device, window.metric, times[0], period_ns, digest)
    resource = _base(resource_id, window.patient, window.device, times[0], 0, profiles_for(metric))
    resource["code"] = {"coding": coding_for(metric), "text": metric.label}
    resource["valueSampledData"] = {
        "origin": _quantity(0.0, metric.unit),
        "period": period_ns / 1e6,  # FHIR: milliseconds between samples
        "dimensions": 1,
        "data": data,
    }
    return resource
