"""The transports that ship with VitalBridge, registered in one place."""

from __future__ import annotations

from edge.transports._base import TransportRegistry
from edge.transports.ble import BleOptions, BleTransport
from edge.transports.serial import SerialOptions, SerialTransport

__all__ = ["register_builtins"]


def register_builtins(registry: TransportRegistry) -> None:
    """Add the built-in transports: ``ble`` (bleak) and ``serial`` (pyserial-asyncio-fast)."""
    registry.add("ble", BleTransport, options=BleOptions)
    registry.add("serial", SerialTransport, options=SerialOptions)
