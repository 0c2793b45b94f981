"""Named decoders: a profile names the decoder for each characteristic or frame it receives.

Built-in decoders are listed in :mod:`device_profiles.builtin`; third-party packages add theirs
through the ``vitalbridge.decoders`` entry point group (each entry point names a callable taking
the :class:`DecoderRegistry` and registering into it). No directory scanning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from importlib.metadata import entry_points
from typing import Any

from vitals.samples import Sample

__all__ = [
    "DecodeContext",
    "DecodeResult",
    "Decoder",
    "DecoderRegistry",
    "ENTRY_POINT_GROUP",
    "default_registry",
]

ENTRY_POINT_GROUP = "vitalbridge.decoders"


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """What a decoder may need besides the bytes; the clock is passed in, never read.

    ``received_ns`` is when the gateway received the bytes (Unix ns, UTC). ``utc_offset_s`` is the
    gateway's local offset from UTC, for devices that stamp local time without a zone; when
    ``timezone`` is given (the gateway's zone, e.g. ``ZoneInfo("Europe/Berlin")``) local stamps are
    converted with the offset in force at the stamped time instead, so daylight saving is right
    for readings taken before a change. ``options`` carries the profile's per-decoder settings.
    """

    received_ns: int
    utc_offset_s: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    timezone: tzinfo | None = None


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """Readings decoded from one payload.

    ``samples`` are catalogue metrics in catalogue units. ``status`` holds device-level facts that
    are not vitals (``battery_percent``, ``sensor_contact``, measurement status flags, ``user_id``...),
    which the gateway reports as events. ``notes`` explain values that were present but not usable
    (an IEEE 11073 NaN or NRes, say), so nothing is dropped silently.
    """

    samples: tuple[Sample, ...] = ()
    status: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


Decoder = Callable[[bytes, DecodeContext], DecodeResult]
"""Pure: bytes and context in, :class:`DecodeResult` out, :class:`~device_profiles.errors.DecodeError` on bad bytes."""


class DecoderRegistry:
    """Decoders by name (``gatt.heart_rate_measurement``, ``serial.nonin_2``, ...)."""

    def __init__(self) -> None:
        self._decoders: dict[str, Decoder] = {}

    def add(self, name: str, decoder: Decoder) -> None:
        """Register ``decoder`` under ``name``; a name can be registered once."""
        if name in self._decoders:
            raise ValueError(f"decoder {name!r} is already registered")
        self._decoders[name] = decoder

    def get(self, name: str) -> Decoder:
        """Return the decoder called ``name``; ``KeyError`` names the known ones."""
        try:
            return self._decoders[name]
        except KeyError:
            raise KeyError(f"unknown decoder {name!r}; known: {', '.join(sorted(self._decoders))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._decoders

    def names(self) -> list[str]:
        """Sorted names of every registered decoder."""
        return sorted(self._decoders)


def default_registry(*, load_entry_points: bool = True) -> DecoderRegistry:
    """Return a registry holding the built-in decoders and, by default, those of installed plug-ins."""
    from device_profiles import builtin

    registry = DecoderRegistry()
    builtin.register_builtins(registry)
    if load_entry_points:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            register: Callable[[DecoderRegistry], None] = entry.load()
            register(registry)
    return registry
