"""Conversions from device units to catalogue units, with the factors stated once."""

from __future__ import annotations

MMHG_PER_KPA = 1000.0 / 133.322387415
"""1 mmHg = 133.322387415 Pa (conventional millimetre of mercury)."""

KG_PER_LB = 0.45359237
"""International avoirdupois pound, exact by definition."""

M_PER_INCH = 0.0254
"""International inch, exact by definition."""

GLUCOSE_MOLAR_MASS_G_PER_MOL = 180.156
"""C6H12O6 from standard atomic weights; so 1 mmol/L = 18.0156 mg/dL."""


def kpa_to_mmhg(kpa: float) -> float:
    """Pressure from kPa to mm[Hg], rounded to 0.01 mm[Hg]."""
    return round(kpa * MMHG_PER_KPA, 2)


def fahrenheit_to_celsius(fahrenheit: float) -> float:
    """Temperature from degrees Fahrenheit to Cel, rounded to 0.001 Cel."""
    return round((fahrenheit - 32.0) * 5.0 / 9.0, 3)


def pounds_to_kg(pounds: float) -> float:
    """Mass from lb to kg, rounded to 0.1 g (the device resolution is 0.01 lb = 4.5 g)."""
    return round(pounds * KG_PER_LB, 4)


def inches_to_m(inches: float) -> float:
    """Length from inches to m, rounded to 0.1 mm."""
    return round(inches * M_PER_INCH, 4)


def glucose_kg_per_l_to_mmol_per_l(kg_per_l: float) -> float:
    """Glucose concentration from kg/L to mmol/L (kg/L * 1e6 g/m3 / 180.156 g/mol), rounded to 0.001."""
    return round(kg_per_l * 1.0e6 / GLUCOSE_MOLAR_MASS_G_PER_MOL, 3)


def glucose_mol_per_l_to_mmol_per_l(mol_per_l: float, exponent: int | None) -> float:
    """Glucose concentration from mol/L to mmol/L, keeping the device's decimal precision.

    ``exponent`` is the SFLOAT exponent the value came with; without one, 0.001 mmol/L is kept.
    """
    digits = 3 if exponent is None else max(0, -exponent - 3)
    return round(mol_per_l * 1000.0, digits)
