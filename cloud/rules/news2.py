"""NEWS2, the Royal College of Physicians' National Early Warning Score 2 (2017), as its chart scores it.

:func:`news2_score` scores one set of observations: respiration rate, SpO2 (scale 1, or scale 2
for a patient with a recorded hypercapnic target of 88-92 %), air or supplemental oxygen,
systolic blood pressure, pulse, consciousness (ACVPU) and temperature. Missing parameters make
the score partial (it says which are missing): the total then counts only what was observed.

Values are rounded to the chart's resolution (whole numbers; temperature to 0.1 degC) before they
are placed, so a reading between two chart rows is scored as the chart reader would score it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

__all__ = [
    "BAND_ORDER",
    "NEWS2_PARAMETERS",
    "News2Band",
    "News2Score",
    "consciousness_score",
    "news2_band",
    "news2_score",
    "pulse_score",
    "respiration_rate_score",
    "spo2_scale1_score",
    "spo2_scale2_score",
    "systolic_score",
    "temperature_score",
]

News2Band = Literal["zero", "low", "low_medium", "medium", "high"]
"""Clinical response band: 0; low 1-4; low-medium (a 3 in any single parameter); medium 5-6; high >= 7."""

BAND_ORDER: tuple[News2Band, ...] = ("zero", "low", "low_medium", "medium", "high")

NEWS2_PARAMETERS = ("respiration_rate", "spo2", "air_or_oxygen", "systolic_bp", "pulse", "consciousness",
                    "temperature")
"""The chart's parameters, in its order."""

Consciousness = Literal["A", "C", "V", "P", "U"]


@dataclass(frozen=True, slots=True)
class News2Score:
    """A NEWS2 score: the total, each parameter's part, the band, and what was missing (partial)."""

    total: int
    parts: dict[str, int]
    band: News2Band
    missing: tuple[str, ...] = ()
    scale: Literal[1, 2] = 1

    @property
    def partial(self) -> bool:
        """True when at least one parameter was not observed."""
        return bool(self.missing)


def _round(value: float) -> int:
    # Half up to a whole number, as a chart reader rounds (float error at exact halves is far below
    # any device's resolution for these whole-number parameters).
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return math.floor(value + 0.5)


def _round_tenth(value: float) -> Decimal:
    # Temperature to 0.1 degC, half up, in decimal so 38.05 is 38.1 (in binary it is 38.0499...).
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def respiration_rate_score(per_min: float) -> int:
    """<= 8: 3; 9-11: 1; 12-20: 0; 21-24: 2; >= 25: 3."""
    rate = _round(per_min)
    if rate <= 8:
        return 3
    if rate <= 11:
        return 1
    if rate <= 20:
        return 0
    if rate <= 24:
        return 2
    return 3


def spo2_scale1_score(percent: float) -> int:
    """<= 91: 3; 92-93: 2; 94-95: 1; >= 96: 0."""
    spo2 = _round(percent)
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def spo2_scale2_score(percent: float, on_oxygen: bool) -> int:
    """<= 83: 3; 84-85: 2; 86-87: 1; 88-92 (and >= 93 on air): 0; on oxygen 93-94: 1, 95-96: 2, >= 97: 3."""
    spo2 = _round(percent)
    if spo2 <= 83:
        return 3
    if spo2 <= 85:
        return 2
    if spo2 <= 87:
        return 1
    if spo2 <= 92 or not on_oxygen:
        return 0
    if spo2 <= 94:
        return 1
    if spo2 <= 96:
        return 2
    return 3


def systolic_score(mm_hg: float) -> int:
    """<= 90: 3; 91-100: 2; 101-110: 1; 111-219: 0; >= 220: 3."""
    systolic = _round(mm_hg)
    if systolic <= 90:
        return 3
    if systolic <= 100:
        return 2
    if systolic <= 110:
        return 1
    if systolic <= 219:
        return 0
    return 3


def pulse_score(per_min: float) -> int:
    """<= 40: 3; 41-50: 1; 51-90: 0; 91-110: 1; 111-130: 2; >= 131: 3."""
    pulse = _round(per_min)
    if pulse <= 40:
        return 3
    if pulse <= 50:
        return 1
    if pulse <= 90:
        return 0
    if pulse <= 110:
        return 1
    if pulse <= 130:
        return 2
    return 3


def temperature_score(celsius: float) -> int:
    """<= 35.0: 3; 35.1-36.0: 1; 36.1-38.0: 0; 38.1-39.0: 1; >= 39.1: 2."""
    temperature = _round_tenth(celsius)
    if temperature <= Decimal("35.0"):
        return 3
    if temperature <= Decimal("36.0"):
        return 1
    if temperature <= Decimal("38.0"):
        return 0
    if temperature <= Decimal("39.0"):
        return 1
    return 2


def consciousness_score(level: Consciousness) -> int:
    """Alert: 0; new confusion, voice, pain or unresponsive (CVPU): 3."""
    if level not in ("A", "C", "V", "P", "U"):
        raise ValueError(f"consciousness must be one of A, C, V, P, U (ACVPU), not {level!r}")
    return 0 if level == "A" else 3


def news2_band(total: int, parts: dict[str, int]) -> News2Band:
    """The response band of a total with its parts."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    if any(part == 3 for part in parts.values()):
        return "low_medium"
    return "low" if total >= 1 else "zero"


def news2_score(
    *,
    respiration_rate: float | None = None,
    spo2: float | None = None,
    on_oxygen: bool | None = None,
    systolic_bp: float | None = None,
    pulse: float | None = None,
    consciousness: Consciousness | None = None,
    temperature: float | None = None,
    scale: Literal[1, 2] = 1,
) -> News2Score:
    """Score one set of observations (rates per minute, SpO2 %, mmHg, degC); None means not observed.

    ``scale`` 2 is for patients whose doctor recorded a hypercapnic target (88-92 %); ``on_oxygen``
    None counts as not observed (the air/oxygen part is then missing; SpO2 on scale 2 is scored as
    on air).
    """
    if scale not in (1, 2):
        raise ValueError(f"scale must be 1 or 2, not {scale!r}")
    parts: dict[str, int] = {}
    missing: list[str] = []
    if respiration_rate is not None:
        parts["respiration_rate"] = respiration_rate_score(respiration_rate)
    if spo2 is not None:
        parts["spo2"] = spo2_scale1_score(spo2) if scale == 1 else spo2_scale2_score(spo2, bool(on_oxygen))
    if on_oxygen is not None:
        parts["air_or_oxygen"] = 2 if on_oxygen else 0
    if systolic_bp is not None:
        parts["systolic_bp"] = systolic_score(systolic_bp)
    if pulse is not None:
        parts["pulse"] = pulse_score(pulse)
    if consciousness is not None:
        parts["consciousness"] = consciousness_score(consciousness)
    if temperature is not None:
        parts["temperature"] = temperature_score(temperature)
    missing = [name for name in NEWS2_PARAMETERS if name not in parts]
    total = sum(parts.values())
    return News2Score(total=total, parts=parts, band=news2_band(total, parts), missing=tuple(missing), scale=scale)
