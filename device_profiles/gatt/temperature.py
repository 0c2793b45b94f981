"""Temperature Measurement (0x2A1C) of the Health Thermometer Service.

Flags (uint8): bit 0 Fahrenheit (else Celsius); bit 1 Time Stamp (Date Time) present; bit 2
Temperature Type (uint8) present; bits 3-7 reserved, ignored. Then the temperature (FLOAT) and
the optional fields in that order. Nothing may follow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder, enum_name
from device_profiles.gatt._units import fahrenheit_to_celsius
from device_profiles.gatt.date_time import DateTime
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureUnit",
    "decode_temperature_measurement",
    "temperature_measurement_decoder",
    "temperature_measurement_result",
]

_NAME = "Temperature Measurement"

_FLAG_FAHRENHEIT = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_TYPE = 0x04


class TemperatureUnit(enum.Enum):
    """Unit of the temperature on the wire."""

    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"


class TemperatureType(enum.IntEnum):
    """Where the temperature was taken (0 and 10-255 are reserved)."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """One Temperature Measurement; ``temperature_type`` is the raw byte (reserved values kept)."""

    temperature: Measured
    unit: TemperatureUnit = TemperatureUnit.CELSIUS
    timestamp: DateTime | None = None
    temperature_type: int | None = None


def decode_temperature_measurement(payload: bytes) -> TemperatureMeasurement:
    """Decode a Temperature Measurement payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    temperature = reader.float32("temperature")
    timestamp = reader.date_time("time stamp") if flags & _FLAG_TIME_STAMP else None
    kind = reader.uint(1, "temperature type") if flags & _FLAG_TYPE else None
    reader.finish()
    unit = TemperatureUnit.FAHRENHEIT if flags & _FLAG_FAHRENHEIT else TemperatureUnit.CELSIUS
    return TemperatureMeasurement(temperature, unit, timestamp, kind)


def temperature_measurement_result(record: TemperatureMeasurement, context: DecodeContext) -> DecodeResult:
    """Sample ``body_temperature`` in Cel (Fahrenheit converted); the site in ``status``."""
    out = ResultBuilder(context)
    time_ns = out.measurement_time(record.timestamp)
    value = out.usable("body_temperature", record.temperature)
    if value is not None and record.unit is TemperatureUnit.FAHRENHEIT:
        value = fahrenheit_to_celsius(value)
    out.add("body_temperature", time_ns, value)
    if record.temperature_type is not None:
        out.status["temperature_type"] = enum_name(TemperatureType, record.temperature_type)
    return out.build()


def temperature_measurement_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.temperature_measurement``."""
    return temperature_measurement_result(decode_temperature_measurement(payload), context)
