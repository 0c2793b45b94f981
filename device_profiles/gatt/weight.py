"""Weight Measurement (0x2A9D) of the Weight Scale Service.

Flags (uint8): bit 0 imperial units (else SI); bit 1 Time Stamp (Date Time) present; bit 2 User ID
(uint8, 255 = unknown user) present; bit 3 BMI and Height present; bits 4-7 reserved, ignored.
Weight (uint16): SI 0.005 kg, imperial 0.01 lb; 0xFFFF means "measurement unsuccessful".
BMI (uint16) 0.1 kg/m2; Height (uint16) SI 0.001 m, imperial 0.1 in. Nothing may follow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder
from device_profiles.gatt._units import inches_to_m, pounds_to_kg
from device_profiles.gatt.date_time import DateTime
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "UNSUCCESSFUL_WEIGHT",
    "WeightMeasurement",
    "WeightUnit",
    "decode_weight_measurement",
    "weight_measurement_decoder",
    "weight_measurement_result",
]

_NAME = "Weight Measurement"

UNSUCCESSFUL_WEIGHT = 0xFFFF
"""Raw weight meaning the measurement was unsuccessful."""

_FLAG_IMPERIAL = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_USER_ID = 0x04
_FLAG_BMI_HEIGHT = 0x08
_UNKNOWN_USER = 0xFF


class WeightUnit(enum.Enum):
    """Unit system of the weight and height on the wire."""

    SI = "si"  # weight kg, height m
    IMPERIAL = "imperial"  # weight lb, height in


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """One weight reading in device units: weight kg or lb (``None``: unsuccessful), height m or in.

    ``bmi`` (kg/m2) and ``height`` travel together: both set or both ``None``.
    """

    weight: float | None
    unit: WeightUnit = WeightUnit.SI
    timestamp: DateTime | None = None
    user_id: int | None = None
    bmi: float | None = None
    height: float | None = None


def decode_weight_measurement(payload: bytes) -> WeightMeasurement:
    """Decode a Weight Measurement payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    imperial = bool(flags & _FLAG_IMPERIAL)
    raw = reader.uint(2, "weight")
    timestamp = reader.date_time("time stamp") if flags & _FLAG_TIME_STAMP else None
    user_id = reader.uint(1, "user ID") if flags & _FLAG_USER_ID else None
    bmi = height = None
    if flags & _FLAG_BMI_HEIGHT:
        bmi = reader.uint(2, "BMI") / 10
        raw_height = reader.uint(2, "height")
        height = raw_height / 10 if imperial else raw_height / 1000
    reader.finish()
    # integer / power of ten: the nearest float to the exact decimal
    weight = None if raw == UNSUCCESSFUL_WEIGHT else (raw / 100 if imperial else raw * 5 / 1000)
    return WeightMeasurement(
        weight, WeightUnit.IMPERIAL if imperial else WeightUnit.SI, timestamp, user_id, bmi, height
    )


def weight_measurement_result(record: WeightMeasurement, context: DecodeContext) -> DecodeResult:
    """Sample ``body_weight`` in kg (pounds converted); BMI, height (m) and user in ``status``."""
    out = ResultBuilder(context)
    time_ns = out.measurement_time(record.timestamp)
    imperial = record.unit is WeightUnit.IMPERIAL
    if record.weight is None:
        out.notes.append("body_weight: device reported the measurement as unsuccessful")
    else:
        out.add("body_weight", time_ns, pounds_to_kg(record.weight) if imperial else record.weight)
    if record.user_id is not None:
        out.status["user_id"] = None if record.user_id == _UNKNOWN_USER else record.user_id
    if record.bmi is not None:
        out.status["bmi"] = record.bmi
    if record.height is not None:
        out.status["height_m"] = inches_to_m(record.height) if imperial else record.height
    return out.build()


def weight_measurement_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.weight_measurement``."""
    return weight_measurement_result(decode_weight_measurement(payload), context)
