"""Serial devices: streaming framers and the decoders of documented serial output formats."""

from __future__ import annotations

from device_profiles.registry import DecoderRegistry
from device_profiles.serial.framing import (
    BinaryFramer,
    ByteTest,
    Frame,
    FrameMatcher,
    Framer,
    LineFramer,
    build_framer,
    checksum8,
)
from device_profiles.serial.masimo import decode_masimo_ascii1
from device_profiles.serial.nonin import decode_nonin_df2_packet

__all__ = [
    "BinaryFramer",
    "ByteTest",
    "Frame",
    "FrameMatcher",
    "Framer",
    "LineFramer",
    "build_framer",
    "checksum8",
    "decode_masimo_ascii1",
    "decode_nonin_df2_packet",
    "register_serial_decoders",
]


def register_serial_decoders(registry: DecoderRegistry) -> None:
    """Add the serial decoders: ``serial.nonin_df2`` and ``serial.masimo_ascii1``."""
    registry.add("serial.nonin_df2", decode_nonin_df2_packet)
    registry.add("serial.masimo_ascii1", decode_masimo_ascii1)
