"""Shared steps from a decoded record to a DecodeResult: times, samples, notes, flag names."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from device_profiles.gatt.date_time import DateTime
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.catalogue import CATALOGUE
from vitals.samples import Sample


class ResultBuilder:
    """Collects the samples, status and notes of one decoded payload."""

    def __init__(self, context: DecodeContext) -> None:
        self.context = context
        self.samples: list[Sample] = []
        self.status: dict[str, object] = {}
        self.notes: list[str] = []

    def measurement_time(
        self, stamp: DateTime | None, *, offset_minutes: int = 0, trusted: bool = True
    ) -> int:
        """The device stamp in UTC ns when known and trusted, else the receive time."""
        if stamp is not None and trusted:
            converted = stamp.to_utc_ns(self.context.utc_offset_s, offset_minutes=offset_minutes,
                                        zone=self.context.timezone)
            if converted is not None:
                return converted
            self.notes.append("device time stamp not known; using the receive time")
        elif stamp is not None:
            self.notes.append("device clock is not set; using the receive time")
        return self.context.received_ns

    def usable(self, field: str, measured: Measured | None) -> float | None:
        """The number in ``measured``, or ``None`` with a note saying why there is none."""
        if measured is None:
            return None
        if measured.special is not None:
            self.notes.append(f"{field}: device sent {measured.special.value}, {measured.special.reason}")
            return None
        return measured.value

    def add(self, metric: str, time_ns: int, value: float | None, quality: int = 0) -> None:
        """Add a sample of catalogue ``metric`` when ``value`` is a number."""
        if value is None:
            return
        assert metric in CATALOGUE, metric  # names come from this package, never from the payload
        self.samples.append(Sample(metric, time_ns, float(value), quality))

    def build(self) -> DecodeResult:
        """The finished result."""
        return DecodeResult(tuple(self.samples), dict(self.status), tuple(self.notes))


def flag_names(flags: enum.IntFlag) -> tuple[str, ...]:
    """Lower-case names of the defined flags set in ``flags`` (reserved bits are left out)."""
    members: Iterable[enum.IntFlag] = type(flags)
    return tuple(str(member.name).lower() for member in members if member.value and member in flags)


def enum_name(table: type[enum.IntEnum], value: int) -> str:
    """Lower-case name of ``value`` in ``table``, or ``reserved_<value>`` when it has none."""
    try:
        return str(table(value).name).lower()
    except ValueError:
        return f"reserved_{value}"

