"""The GATT decoders by registered name; :mod:`device_profiles.builtin` adds them all."""

from __future__ import annotations

from device_profiles.gatt.battery import battery_level_decoder
from device_profiles.gatt.blood_pressure import blood_pressure_measurement_decoder
from device_profiles.gatt.device_information import device_information_string_decoder, system_id_decoder
from device_profiles.gatt.glucose import glucose_measurement_decoder
from device_profiles.gatt.glucose_context import glucose_measurement_context_decoder
from device_profiles.gatt.heart_rate import heart_rate_measurement_decoder
from device_profiles.gatt.intermediate_cuff_pressure import intermediate_cuff_pressure_decoder
from device_profiles.gatt.plx_continuous import plx_continuous_decoder
from device_profiles.gatt.plx_spot_check import plx_spot_check_decoder
from device_profiles.gatt.racp import racp_decoder
from device_profiles.gatt.temperature import temperature_measurement_decoder
from device_profiles.gatt.weight import weight_measurement_decoder
from device_profiles.registry import Decoder

__all__ = ["GATT_DECODERS"]

GATT_DECODERS: dict[str, Decoder] = {
    "gatt.heart_rate_measurement": heart_rate_measurement_decoder,
    "gatt.blood_pressure_measurement": blood_pressure_measurement_decoder,
    "gatt.intermediate_cuff_pressure": intermediate_cuff_pressure_decoder,
    "gatt.temperature_measurement": temperature_measurement_decoder,
    "gatt.plx_spot_check": plx_spot_check_decoder,
    "gatt.plx_continuous": plx_continuous_decoder,
    "gatt.glucose_measurement": glucose_measurement_decoder,
    "gatt.glucose_measurement_context": glucose_measurement_context_decoder,
    "gatt.record_access_control_point": racp_decoder,
    "gatt.weight_measurement": weight_measurement_decoder,
    "gatt.battery_level": battery_level_decoder,
    "gatt.manufacturer_name": device_information_string_decoder("manufacturer_name"),
    "gatt.model_number": device_information_string_decoder("model_number"),
    "gatt.serial_number": device_information_string_decoder("serial_number"),
    "gatt.firmware_revision": device_information_string_decoder("firmware_revision"),
    "gatt.system_id": system_id_decoder,
}
"""Registered name -> decoder (bytes, DecodeContext) -> DecodeResult."""
