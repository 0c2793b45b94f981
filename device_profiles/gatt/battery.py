"""Battery Level (0x2A19) of the Battery Service: one uint8, 0-100 %."""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = ["BatteryLevel", "battery_level_decoder", "battery_level_result", "decode_battery_level"]

_NAME = "Battery Level"


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Remaining battery charge in percent (0-100)."""

    percent: int


def decode_battery_level(payload: bytes) -> BatteryLevel:
    """Decode a Battery Level payload; values above 100 are a :class:`DecodeError`."""
    reader = PayloadReader(payload, _NAME)
    percent = reader.uint(1, "battery level")
    if percent > 100:
        raise reader.error(f"battery level {percent} % is above 100", 0)
    reader.finish()
    return BatteryLevel(percent)


def battery_level_result(record: BatteryLevel, context: DecodeContext) -> DecodeResult:
    """No samples; ``status["battery_percent"]``."""
    out = ResultBuilder(context)
    out.status["battery_percent"] = record.percent
    return out.build()


def battery_level_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.battery_level``."""
    return battery_level_result(decode_battery_level(payload), context)
