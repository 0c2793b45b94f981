"""A cursor over a characteristic payload that names the field and offset in every error."""

from __future__ import annotations

from device_profiles.errors import DecodeError
from device_profiles.gatt.date_time import DATE_TIME_SIZE, DateTime, date_time_problem
from device_profiles.ieee11073 import Measured, decode_float, decode_sfloat


class PayloadReader:
    """Reads little-endian fields in order; every failure is a :class:`DecodeError`."""

    def __init__(self, payload: bytes, characteristic: str) -> None:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise DecodeError(f"{characteristic}: payload must be bytes, not {type(payload).__name__}")
        self._data = bytes(payload)
        self._characteristic = characteristic
        self.offset = 0

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self.offset

    def error(self, message: str, offset: int | None = None) -> DecodeError:
        """A :class:`DecodeError` naming the characteristic and byte offset."""
        where = self.offset if offset is None else offset
        return DecodeError(f"{self._characteristic}: {message} (byte offset {where})")

    def take(self, size: int, field: str) -> bytes:
        """The next ``size`` bytes of ``field``."""
        if self.remaining < size:
            raise self.error(
                f"{field} needs {size} byte(s) but only {self.remaining} remain of {len(self._data)}"
            )
        chunk = self._data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int, field: str) -> int:
        """An unsigned little-endian integer of ``size`` bytes."""
        return int.from_bytes(self.take(size, field), "little")

    def sint(self, size: int, field: str) -> int:
        """A signed little-endian integer of ``size`` bytes."""
        return int.from_bytes(self.take(size, field), "little", signed=True)

    def sfloat(self, field: str) -> Measured:
        """An IEEE 11073 16-bit SFLOAT."""
        return decode_sfloat(self.uint(2, field))

    def float32(self, field: str) -> Measured:
        """An IEEE 11073 32-bit FLOAT."""
        return decode_float(self.uint(4, field))

    def date_time(self, field: str) -> DateTime:
        """A 7-byte Date Time, checked field by field."""
        start = self.offset
        raw = self.take(DATE_TIME_SIZE, field)
        parts = (int.from_bytes(raw[0:2], "little"), raw[2], raw[3], raw[4], raw[5], raw[6])
        problem = date_time_problem(*parts)
        if problem is not None:
            offset, message = problem
            raise self.error(f"{field}: {message}", start + offset)
        return DateTime(*parts)

    def finish(self) -> None:
        """Fail when bytes are left over: no characteristic here allows trailing data."""
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected trailing byte(s) after the last field")
