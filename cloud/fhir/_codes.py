"""Code systems, profiles and the catalogue's mapping to FHIR (pure, no I/O).

Every catalogue metric is coded twice where it can be (LOINC, and the IEEE 11073-10101 MDC code the
Personal Health Device IG uses), plus the catalogue name in VitalBridge's own code system so that a
metric with neither code (RR irregularity, signal quality indices) still carries one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from vitals.catalogue import CATALOGUE, Metric, MetricKind

__all__ = [
    "BP_METRICS",
    "BP_PANEL_LOINC",
    "BP_PANEL_MDC",
    "LOINC",
    "MDC",
    "METRIC_SYSTEM",
    "QUALITY_SYSTEM",
    "UCUM",
    "URI_SYSTEM",
    "VITAL_SIGNS_PROFILES",
    "MappingRow",
    "coding_for",
    "deterministic_uuid",
    "mapping_rows",
    "mapping_table_markdown",
    "metrics_for_code",
    "profiles_for",
]

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
URI_SYSTEM = "urn:ietf:rfc:3986"
"""The identifier system of a ``urn:uuid:`` value: the identifier is globally unique by itself."""
METRIC_SYSTEM = "urn:vitalbridge:fhir:metric"
"""VitalBridge's own code system: the catalogue metric name."""
QUALITY_SYSTEM = "urn:vitalbridge:fhir:quality"
"""Tags (``meta.tag``) naming the quality flags of a value that is not clean."""

BP_PANEL_LOINC = "85354-9"
BP_PANEL_MDC = (2 << 16) | 18948  # MDC_PRESS_BLD_NONINV: the compound non-invasive blood pressure
BP_METRICS = ("bp_systolic", "bp_diastolic", "bp_mean")
"""Metrics that travel as components of one blood pressure panel when they share a device and a time."""

_UUID_NAMESPACE = uuid.UUID("6f1d3c1e-2b5a-5d8e-9a43-7b1f0c9e4d21")

_VS = "http://hl7.org/fhir/StructureDefinition/"
_PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
PHD_NUMERIC = _PHD + "PhdNumericObservation"
PHD_COMPOUND = _PHD + "PhdCompoundNumericObservation"
PHD_RTSA = _PHD + "PhdRtsaObservation"

VITAL_SIGNS_PROFILES: dict[str, str] = {
    "heart_rate": _VS + "heartrate",
    "spo2": _VS + "oxygensat",
    "body_temperature": _VS + "bodytemp",
    "respiratory_rate": _VS + "resprate",
    "body_weight": _VS + "bodyweight",
    "bp_panel": _VS + "bp",
}
"""The FHIR R4 vital-signs profile each metric conforms to, where its LOINC code is the one the profile fixes."""

# The R4 oxygen saturation profile fixes 2708-6; 59408-5 (by pulse oximetry) is the more precise code.
_EXTRA_LOINC: dict[str, tuple[str, str]] = {"spo2": ("2708-6", "Oxygen saturation in Arterial blood")}


def coding_for(metric: Metric) -> list[dict[str, Any]]:
    """The codings of ``metric``: LOINC (where it has one), MDC (where it has one), the catalogue name."""
    codings: list[dict[str, Any]] = []
    if metric.loinc is not None:
        codings.append({"system": LOINC, "code": metric.loinc, "display": metric.label})
    if metric.name in _EXTRA_LOINC:
        code, display = _EXTRA_LOINC[metric.name]
        codings.append({"system": LOINC, "code": code, "display": display})
    if metric.mdc_code is not None:
        codings.append({"system": MDC, "code": str(metric.mdc_code), "display": metric.mdc_ref})
    codings.append({"system": METRIC_SYSTEM, "code": metric.name, "display": metric.label})
    return codings


def profiles_for(metric: Metric) -> list[str]:
    """``meta.profile`` of a single-metric Observation of ``metric``."""
    phd = PHD_RTSA if metric.kind is MetricKind.WAVEFORM else PHD_NUMERIC
    vital = VITAL_SIGNS_PROFILES.get(metric.name)
    return [phd, vital] if vital is not None else [phd]


def metrics_for_code(token: str) -> frozenset[str] | None:
    """The catalogue metrics a FHIR ``code`` search token selects (``[system|]code``), None for no match.

    Any code of the blood pressure panel, or of one of its parts, selects all three pressure metrics:
    they are served as one panel.
    """
    system, _, code = token.rpartition("|")
    if not code:
        return None
    found: set[str] = set()
    if code in (BP_PANEL_LOINC, str(BP_PANEL_MDC)) and system in ("", LOINC, MDC):
        found.update(BP_METRICS)
    for metric in CATALOGUE.values():
        codes = {(system_, coding["code"]) for coding in coding_for(metric) for system_ in (coding["system"], "")}
        if (system, code) in codes:
            found.add(metric.name)
    if found & set(BP_METRICS):
        found.update(BP_METRICS)
    return frozenset(found) or None


def deterministic_uuid(*parts: object) -> str:
    """A UUID (version 5) of ``parts``: the same parts always give the same id, on any machine."""
    return str(uuid.uuid5(_UUID_NAMESPACE, "\x1f".join(repr(part) for part in parts)))


@dataclass(frozen=True, slots=True)
class MappingRow:
    """One line of the mapping table in the interoperability guide."""

    metric: str
    label: str
    loinc: str
    mdc: str
    ucum: str
    profiles: str


def mapping_rows() -> list[MappingRow]:
    """The catalogue as FHIR sees it, one row per metric (blood pressure parts point at the panel)."""
    rows = []
    for metric in CATALOGUE.values():
        loinc = ", ".join(c["code"] for c in coding_for(metric) if c["system"] == LOINC) or "—"
        mdc = f"{metric.mdc_code} ({metric.mdc_ref})" if metric.mdc_code is not None else "—"
        if metric.name in BP_METRICS:
            profiles = f"component of {BP_PANEL_LOINC}: PhdCompoundNumericObservation, bp"
        else:
            profiles = ", ".join(url.rsplit("/", 1)[1] for url in profiles_for(metric))
        rows.append(MappingRow(metric.name, metric.label, loinc, mdc, metric.unit, profiles))
    return rows


def mapping_table_markdown() -> str:
    """The mapping table of the interoperability guide, as Markdown (a test keeps the guide's copy equal)."""
    lines = ["| metric | label | LOINC | MDC (IEEE 11073-10101) | UCUM | FHIR profiles |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r.metric}` | {r.label} | {r.loinc} | {r.mdc} | `{r.ucum}` | {r.profiles} |" for r in mapping_rows()]
    return "\n".join(lines) + "\n"
