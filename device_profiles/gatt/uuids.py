"""Bluetooth SIG 16-bit UUIDs of the health services and characteristics, as full 128-bit strings."""

from __future__ import annotations

__all__ = [
    "BATTERY_SERVICE",
    "BLOOD_PRESSURE_SERVICE",
    "DEVICE_INFORMATION_SERVICE",
    "GATT_CHARACTERISTICS",
    "GATT_SERVICES",
    "GLUCOSE_SERVICE",
    "HEALTH_THERMOMETER_SERVICE",
    "HEART_RATE_SERVICE",
    "PULSE_OXIMETER_SERVICE",
    "WEIGHT_SCALE_SERVICE",
    "uuid16_to_uuid128",
]


def uuid16_to_uuid128(uuid16: int) -> str:
    """The Bluetooth Base UUID with ``uuid16`` filled in, lower case (``0000180d-0000-1000-...``)."""
    if not 0 <= uuid16 <= 0xFFFF:
        raise ValueError(f"{uuid16} is not a 16-bit UUID")
    return f"0000{uuid16:04x}-0000-1000-8000-00805f9b34fb"


HEART_RATE_SERVICE = uuid16_to_uuid128(0x180D)
BLOOD_PRESSURE_SERVICE = uuid16_to_uuid128(0x1810)
HEALTH_THERMOMETER_SERVICE = uuid16_to_uuid128(0x1809)
PULSE_OXIMETER_SERVICE = uuid16_to_uuid128(0x1822)
GLUCOSE_SERVICE = uuid16_to_uuid128(0x1808)
WEIGHT_SCALE_SERVICE = uuid16_to_uuid128(0x181D)
BATTERY_SERVICE = uuid16_to_uuid128(0x180F)
DEVICE_INFORMATION_SERVICE = uuid16_to_uuid128(0x180A)

GATT_SERVICES: dict[str, str] = {
    HEART_RATE_SERVICE: "heart_rate",
    BLOOD_PRESSURE_SERVICE: "blood_pressure",
    HEALTH_THERMOMETER_SERVICE: "health_thermometer",
    PULSE_OXIMETER_SERVICE: "pulse_oximeter",
    GLUCOSE_SERVICE: "glucose",
    WEIGHT_SCALE_SERVICE: "weight_scale",
    BATTERY_SERVICE: "battery",
    DEVICE_INFORMATION_SERVICE: "device_information",
}
"""Service UUID -> service name."""

GATT_CHARACTERISTICS: dict[str, str] = {
    uuid16_to_uuid128(uuid16): name
    for uuid16, name in (
        (0x2A37, "gatt.heart_rate_measurement"),
        (0x2A35, "gatt.blood_pressure_measurement"),
        (0x2A36, "gatt.intermediate_cuff_pressure"),
        (0x2A1C, "gatt.temperature_measurement"),
        (0x2A5E, "gatt.plx_spot_check"),
        (0x2A5F, "gatt.plx_continuous"),
        (0x2A18, "gatt.glucose_measurement"),
        (0x2A34, "gatt.glucose_measurement_context"),
        (0x2A52, "gatt.record_access_control_point"),
        (0x2A9D, "gatt.weight_measurement"),
        (0x2A19, "gatt.battery_level"),
        (0x2A29, "gatt.manufacturer_name"),
        (0x2A24, "gatt.model_number"),
        (0x2A25, "gatt.serial_number"),
        (0x2A26, "gatt.firmware_revision"),
        (0x2A23, "gatt.system_id"),
    )
}
"""Characteristic UUID -> name of its registered decoder."""
