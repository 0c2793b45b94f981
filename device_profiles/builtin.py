"""The one list of built-in decoders."""

from __future__ import annotations

from device_profiles.ecg_patch import ecg_patch_decoder
from device_profiles.gatt.decoders import GATT_DECODERS
from device_profiles.registry import DecoderRegistry
from device_profiles.serial import register_serial_decoders

__all__ = ["register_builtins"]


def register_builtins(registry: DecoderRegistry) -> None:
    """Add every built-in decoder to ``registry``."""
    register_serial_decoders(registry)
    for name, decoder in GATT_DECODERS.items():
        registry.add(name, decoder)
    registry.add("ble.ecg_patch", ecg_patch_decoder)
