"""Units a SenML record may carry for each catalogue unit, and how to convert them (pure).

Keys are SenML registry symbols (RFC 8428 section 12.1) and their UCUM spellings; each maps to
``(scale, offset)`` so that ``catalogue value = value * scale + offset``. Only conversions that
hold for every metric of that catalogue unit are listed here; a conversion that depends on the
substance (mg/dL of glucose) is listed per metric.
"""

from __future__ import annotations

__all__ = ["METRIC_UNITS", "REFUSED_UNITS", "UNIT_CONVERSIONS", "conversion_for"]

_MMHG_PA = 133.322387415  # one mm[Hg] in pascal (UCUM: 13.5951 g/cm3 x g_n x 1 mm)
_LB_KG = 0.45359237  # the international avoirdupois pound, exactly
_GLUCOSE_MG_DL_PER_MMOL_L = 18.0156  # glucose, C6H12O6: 180.156 g/mol

UNIT_CONVERSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "/min": {
        "/min": (1.0, 0.0), "1/min": (1.0, 0.0), "beat/min": (1.0, 0.0), "beats/min": (1.0, 0.0),
        "{beats}/min": (1.0, 0.0), "{beat}/min": (1.0, 0.0), "breaths/min": (1.0, 0.0),
        "{breaths}/min": (1.0, 0.0), "/s": (60.0, 0.0), "1/s": (60.0, 0.0), "Hz": (60.0, 0.0),
    },
    "%": {"%": (1.0, 0.0), "/": (100.0, 0.0), "1": (100.0, 0.0), "ratio": (100.0, 0.0)},
    "1": {"1": (1.0, 0.0), "/": (1.0, 0.0), "ratio": (1.0, 0.0), "%": (0.01, 0.0)},
    "mm[Hg]": {
        "mm[Hg]": (1.0, 0.0), "mmHg": (1.0, 0.0), "Pa": (1.0 / _MMHG_PA, 0.0),
        "hPa": (100.0 / _MMHG_PA, 0.0), "kPa": (1000.0 / _MMHG_PA, 0.0),
    },
    "Cel": {
        "Cel": (1.0, 0.0), "K": (1.0, -273.15), "[degF]": (5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "degF": (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    },
    "kg": {"kg": (1.0, 0.0), "g": (0.001, 0.0), "[lb_av]": (_LB_KG, 0.0), "lb": (_LB_KG, 0.0)},
    "mmol/L": {"mmol/L": (1.0, 0.0), "mmol/l": (1.0, 0.0), "mol/m3": (1.0, 0.0)},
    "ms": {"ms": (1.0, 0.0), "s": (1000.0, 0.0), "us": (0.001, 0.0)},
    "mV": {"mV": (1.0, 0.0), "V": (1000.0, 0.0), "uV": (0.001, 0.0)},
}
"""Per catalogue unit: the SenML or UCUM units accepted for it, as ``(scale, offset)``."""

METRIC_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "blood_glucose": {
        "mg/dL": (1.0 / _GLUCOSE_MG_DL_PER_MMOL_L, 0.0), "mg/dl": (1.0 / _GLUCOSE_MG_DL_PER_MMOL_L, 0.0),
    },
}
"""Per metric: conversions that hold only for that substance, on top of its catalogue unit's."""

REFUSED_UNITS: dict[str, str] = {
    "%EL": "'%EL' is a battery's remaining energy level, not a physiological measurement",
    "%RH": "'%RH' is relative humidity, not a physiological measurement",
}
"""Units that look close to an accepted one but mean something else, with why they are refused."""


def conversion_for(metric: str, catalogue_unit: str, unit: str) -> tuple[float, float] | None:
    """The ``(scale, offset)`` taking ``unit`` to ``catalogue_unit`` for ``metric``, or None."""
    found = METRIC_UNITS.get(metric, {}).get(unit)
    if found is not None:
        return found
    return UNIT_CONVERSIONS.get(catalogue_unit, {}).get(unit)
