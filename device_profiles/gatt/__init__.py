"""Decoders for the Bluetooth SIG health characteristics (GATT), one module per characteristic.

Each module has a frozen record dataclass, ``decode_<name>(payload) -> record`` (raising only
:class:`~device_profiles.errors.DecodeError`), ``<name>_result(record, context) -> DecodeResult``
and the registered ``<name>_decoder(payload, context)``. Payloads must end where the last flagged
field ends: trailing bytes are an error (only RR-intervals run to the end by definition).
Reserved flag bits are ignored, as the specifications ask of receivers.
"""

from device_profiles.gatt.decoders import GATT_DECODERS
from device_profiles.gatt.uuids import GATT_CHARACTERISTICS, GATT_SERVICES

__all__ = ["GATT_CHARACTERISTICS", "GATT_DECODERS", "GATT_SERVICES"]
