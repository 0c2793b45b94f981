"""Catalogue metric -> the codes an HL7 v2 device observation carries (pure, table-driven).

OBX-3 names the observation by its IEEE 11073-10101 (MDC) code, ``<code>^<reference id>^MDC``; OBX-6
names the unit by its MDC dimension code with the UCUM code as the alternate coding, so a receiver
that knows either system can read it. Metrics without an MDC term (derived indices such as HRV
statistics) travel with a local code in the ``99VB`` coding system, as HL7 allows for local codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitals.catalogue import CATALOGUE, Metric, MetricKind

__all__ = ["LOCAL_CODING_SYSTEM", "MDC_UNITS", "ObservationCodes", "numeric_metrics", "observation_codes"]

LOCAL_CODING_SYSTEM = "99VB"
"""HL7 local coding system (``99`` prefix) for metrics the MDC nomenclature has no term for."""

_DIM = 4 << 16  # MDC partition 4: dimensions (units of measure)

MDC_UNITS: dict[str, tuple[int, str]] = {
    # UCUM code (as in the catalogue) -> (MDC code, MDC reference id)
    "%": (_DIM | 544, "MDC_DIM_PERCENT"),
    "mm[Hg]": (_DIM | 3872, "MDC_DIM_MMHG"),
    "Cel": (_DIM | 6048, "MDC_DIM_DEGC"),
    "kg": (_DIM | 1731, "MDC_DIM_KILO_G"),
    "ms": (_DIM | 2194, "MDC_DIM_MILLI_SEC"),
    "mmol/L": (_DIM | 4722, "MDC_DIM_MILLI_MOLE_PER_L"),
    "mV": (_DIM | 4274, "MDC_DIM_MILLI_VOLT"),
    "1": (_DIM | 512, "MDC_DIM_DIMLESS"),
}
"""MDC dimension codes of the catalogue's UCUM units (``/min`` depends on what is counted: see below)."""

_PER_MINUTE: dict[str, tuple[int, str]] = {
    # "/min" counts beats for the heart and pulse, breaths for respiration.
    "heart_rate": (_DIM | 2720, "MDC_DIM_BEAT_PER_MIN"),
    "pulse_rate": (_DIM | 2720, "MDC_DIM_BEAT_PER_MIN"),
    "respiratory_rate": (_DIM | 2784, "MDC_DIM_RESP_PER_MIN"),
}


@dataclass(frozen=True, slots=True)
class ObservationCodes:
    """OBX-3 and OBX-6 of one metric as components: ``(identifier, text, coding system)`` triples.

    ``unit`` holds six components: the MDC unit, then its UCUM alternate.
    """

    observation: tuple[str, str, str]
    unit: tuple[str, str, str, str, str, str]


def _unit(metric: Metric) -> tuple[str, str, str, str, str, str]:
    mdc = _PER_MINUTE.get(metric.name) if metric.unit == "/min" else MDC_UNITS.get(metric.unit)
    if mdc is None:
        return ("", "", "", metric.unit, metric.unit, "UCUM")
    return (str(mdc[0]), mdc[1], "MDC", metric.unit, metric.unit, "UCUM")


def observation_codes(metric: str) -> ObservationCodes:
    """The OBX-3 and OBX-6 codes of catalogue ``metric`` (raises ``KeyError`` for an unknown name)."""
    entry = CATALOGUE[metric]
    if entry.mdc_code is not None and entry.mdc_ref is not None:
        observation = (str(entry.mdc_code), entry.mdc_ref, "MDC")
    else:
        observation = (entry.name, entry.label, LOCAL_CODING_SYSTEM)
    return ObservationCodes(observation, _unit(entry))


def numeric_metrics() -> list[str]:
    """The catalogue metrics sent as numeric observations (waveforms are not: see the docs)."""
    return [name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.NUMERIC]
