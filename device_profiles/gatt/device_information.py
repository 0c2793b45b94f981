"""Device Information Service strings (0x2A29, 0x2A24, 0x2A25, 0x2A26) and System ID (0x2A23).

The strings are UTF-8 without a terminator; trailing NUL bytes, which some devices send anyway,
are dropped. System ID is 8 bytes: a 40-bit manufacturer-defined identifier then a 24-bit
organizationally unique identifier (OUI), both little-endian.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "DEVICE_INFORMATION_STRINGS",
    "SystemId",
    "decode_device_information_string",
    "decode_system_id",
    "device_information_string_decoder",
    "system_id_decoder",
]

DEVICE_INFORMATION_STRINGS: dict[str, str] = {
    "manufacturer_name": "Manufacturer Name String",
    "model_number": "Model Number String",
    "serial_number": "Serial Number String",
    "firmware_revision": "Firmware Revision String",
}
"""Status key -> characteristic name, for the string characteristics."""


@dataclass(frozen=True, slots=True)
class SystemId:
    """System ID: manufacturer-defined identifier (40 bits) and OUI (24 bits)."""

    manufacturer_identifier: int
    organizationally_unique_identifier: int


def decode_device_information_string(payload: bytes, characteristic: str = "Device Information") -> str:
    """Decode a UTF-8 string characteristic; invalid UTF-8 is a :class:`DecodeError`."""
    reader = PayloadReader(payload, characteristic)
    raw = reader.take(reader.remaining, "string").rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise reader.error(f"string is not UTF-8: {exc.reason}", exc.start) from None


def decode_system_id(payload: bytes) -> SystemId:
    """Decode a System ID payload (exactly 8 bytes)."""
    reader = PayloadReader(payload, "System ID")
    manufacturer = reader.uint(5, "manufacturer identifier")
    oui = reader.uint(3, "organizationally unique identifier")
    reader.finish()
    return SystemId(manufacturer, oui)


def device_information_string_decoder(key: str) -> Callable[[bytes, DecodeContext], DecodeResult]:
    """A registered decoder putting the string in ``status[key]`` (a key of DEVICE_INFORMATION_STRINGS)."""
    characteristic = DEVICE_INFORMATION_STRINGS[key]

    def decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
        out = ResultBuilder(context)
        out.status[key] = decode_device_information_string(payload, characteristic)
        return out.build()

    decoder.__name__ = f"{key}_decoder"
    decoder.__doc__ = f"Registered decoder ``gatt.{key}``: ``status[{key!r}]`` is the {characteristic}."
    return decoder


def system_id_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.system_id``: ``status`` holds both identifiers as integers."""
    record = decode_system_id(payload)
    out = ResultBuilder(context)
    out.status["system_id_manufacturer_identifier"] = record.manufacturer_identifier
    out.status["system_id_oui"] = record.organizationally_unique_identifier
    return out.build()
