"""Intermediate Cuff Pressure (0x2A36): the cuff pressure while a blood pressure reading runs.

Same layout as Blood Pressure Measurement; the systolic field carries the current cuff
pressure and the diastolic and mean fields are unused (devices send NaN; they are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.gatt._result import ResultBuilder
from device_profiles.gatt.blood_pressure import (
    BloodPressureStatus,
    PressureUnit,
    _common_status,
    _read_layout,
    _to_mmhg,
)
from device_profiles.gatt.date_time import DateTime
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "IntermediateCuffPressure",
    "decode_intermediate_cuff_pressure",
    "intermediate_cuff_pressure_decoder",
    "intermediate_cuff_pressure_result",
]

_NAME = "Intermediate Cuff Pressure"


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """One Intermediate Cuff Pressure notification; pressure in ``unit``, pulse rate in /min."""

    cuff_pressure: Measured
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: DateTime | None = None
    pulse_rate: Measured | None = None
    user_id: int | None = None
    measurement_status: BloodPressureStatus | None = None


def decode_intermediate_cuff_pressure(payload: bytes) -> IntermediateCuffPressure:
    """Decode an Intermediate Cuff Pressure payload; :class:`DecodeError` on malformed bytes."""
    layout = _read_layout(payload, _NAME, ("current cuff pressure", "unused diastolic", "unused mean"))
    return IntermediateCuffPressure(
        layout.pressures[0], layout.unit, layout.timestamp, layout.pulse_rate, layout.user_id,
        layout.status,
    )


def intermediate_cuff_pressure_result(
    record: IntermediateCuffPressure, context: DecodeContext
) -> DecodeResult:
    """``status["cuff_pressure_mmhg"]`` (mm[Hg], progress, not a vital) and a ``pulse_rate`` sample."""
    out = ResultBuilder(context)
    time_ns = out.measurement_time(record.timestamp)
    quality = _common_status(out, record.user_id, record.measurement_status)
    cuff = _to_mmhg(out.usable("cuff_pressure", record.cuff_pressure), record.unit)
    if cuff is not None:
        out.status["cuff_pressure_mmhg"] = cuff
    out.add("pulse_rate", time_ns, out.usable("pulse_rate", record.pulse_rate), quality)
    return out.build()


def intermediate_cuff_pressure_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.intermediate_cuff_pressure``."""
    return intermediate_cuff_pressure_result(decode_intermediate_cuff_pressure(payload), context)
