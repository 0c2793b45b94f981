"""The device profile model: streams (generic properties) apart from transport attributes.

A :class:`DeviceProfile` is what :func:`device_profiles.load_profile` returns. Transports ask it
for a decoder per characteristic or serial frame (:meth:`DeviceProfile.decoder_for`); the decoder
it hands out applies the profile's stream ``scale``, ``offset`` and ``range`` once, here, whatever
decoder (registered or declarative layout) produced the raw readings.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from device_profiles.layout import FixedLayout
from device_profiles.registry import DecodeContext, Decoder, DecodeResult, DecoderRegistry
from device_profiles.serial.framing import Framer, build_framer
from vitals.samples import Quality, Sample

__all__ = [
    "BleTransport",
    "Characteristic",
    "DeviceProfile",
    "Example",
    "ProfileError",
    "ProfileProblem",
    "SerialFrame",
    "SerialTransport",
    "StreamSpec",
    "apply_streams",
    "normalize_uuid",
]

_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def normalize_uuid(text: str) -> str:
    """Full lower-case 128-bit form of a Bluetooth UUID given as 16-bit, 32-bit or 128-bit hex."""
    text = text.strip().lower()
    if len(text) == 4:
        return f"0000{text}{_BASE_UUID_TAIL}"
    if len(text) == 8:
        return f"{text}{_BASE_UUID_TAIL}"
    return text


@dataclass(frozen=True, slots=True)
class ProfileProblem:
    """One thing wrong with a profile: where (file, field path, 1-based line) and what."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}"


class ProfileError(ValueError):
    """A profile that cannot be used; ``problems`` lists every finding with file, field and line."""

    def __init__(self, problems: Sequence[ProfileProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """Generic properties of one stream: values leave as ``raw * scale + offset`` in ``unit``.

    ``unit`` is the catalogue unit of ``metric`` (checked on load); ``range`` is the device's
    measuring range after scaling, outside which a value is flagged, not dropped.
    """

    metric: str
    unit: str
    value_type: str = "float"
    scale: float = 1.0
    offset: float = 0.0
    range: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Characteristic:
    """A GATT characteristic the gateway subscribes to (notify/indicate) or reads (every ``poll_s`` s)."""

    name: str
    service_uuid: str
    uuid: str
    mode: str
    decoder: str | None
    layout: FixedLayout | None
    options: Mapping[str, Any] = field(default_factory=dict)
    poll_s: float | None = None


@dataclass(frozen=True, slots=True)
class BleTransport:
    """BLE attributes: how to recognise the device in advertisements, and what to subscribe to."""

    name_patterns: tuple[str, ...]
    service_uuids: tuple[str, ...]
    characteristics: tuple[Characteristic, ...]

    def matches(self, local_name: str | None, service_uuids: Sequence[str]) -> bool:
        """Whether an advertisement (local name, advertised service UUIDs) fits this profile.

        It fits when its name matches one of ``name_patterns`` (shell-style, case-sensitive) or it
        advertises one of ``service_uuids``; devices often leave one of the two out of some
        advertisements. A profile with no filters never matches.
        """
        if local_name is not None and any(fnmatch.fnmatchcase(local_name, p) for p in self.name_patterns):
            return True
        advertised = {normalize_uuid(uuid) for uuid in service_uuids}
        return bool(advertised.intersection(self.service_uuids))


@dataclass(frozen=True, slots=True)
class SerialFrame:
    """One kind of frame a serial device sends, and the decoder for it."""

    name: str
    decoder: str
    match_prefix: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SerialTransport:
    """Serial line settings and the framing that cuts the byte stream into frames."""

    baud: int
    data_bits: int
    parity: str
    stop_bits: int
    framing: Mapping[str, Any]
    frames: tuple[SerialFrame, ...]

    def make_framer(self) -> Framer:
        """A fresh streaming framer (one per connection; it holds partial frames)."""
        return build_framer(
            self.framing,
            [{"name": frame.name, "match_prefix": frame.match_prefix} for frame in self.frames],
        )


@dataclass(frozen=True, slots=True)
class Example:
    """An example frame with what it must decode to (``expect`` as written in the profile)."""

    index: int
    payload: bytes
    characteristic: str | None
    received_ns: int
    utc_offset_s: int
    expect: Mapping[str, Any]
    description: str = ""


def apply_streams(result: DecodeResult, streams: Mapping[str, StreamSpec]) -> DecodeResult:
    """Apply each sample's stream scale, offset and range; drop (with a note) undeclared metrics."""
    samples: list[Sample] = []
    notes = list(result.notes)
    for sample in result.samples:
        spec = streams.get(sample.metric)
        if spec is None:
            notes.append(f"{sample.metric}: not a stream of this profile; dropped")
            continue
        value = sample.value
        if spec.scale != 1.0 or spec.offset != 0.0:
            value = value * spec.scale + spec.offset
        quality = sample.quality
        if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
            quality |= Quality.DEVICE_QUESTIONABLE
            notes.append(
                f"{sample.metric}: {value:g} {spec.unit} outside the device range "
                f"{spec.range[0]:g}..{spec.range[1]:g}"
            )
        samples.append(Sample(sample.metric, sample.time_ns, value, int(quality)))
    return DecodeResult(tuple(samples), result.status, tuple(notes))


@dataclass(frozen=True)
class DeviceProfile:
    """A device model's profile, as loaded and checked from ``<vendor>/<model>.yaml``."""

    id: str
    vendor: str
    model: str
    description: str
    device_kind: str | None
    source_document: str | None
    streams: Mapping[str, StreamSpec]
    ble: BleTransport | None
    serial: SerialTransport | None
    examples: tuple[Example, ...]
    path: Path | None = None
    lines: Mapping[tuple[str | int, ...], int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def transport(self) -> str:
        """``"ble"`` or ``"serial"``."""
        return "ble" if self.ble is not None else "serial"

    def decoder_keys(self) -> list[str]:
        """Names of the characteristics or serial frames, in profile order."""
        if self.ble is not None:
            return [item.name for item in self.ble.characteristics]
        assert self.serial is not None
        return [item.name for item in self.serial.frames]

    def decoder_names(self) -> set[str]:
        """Registry names this profile needs (declarative layouts need none)."""
        if self.ble is not None:
            return {item.decoder for item in self.ble.characteristics if item.decoder is not None}
        assert self.serial is not None
        return {item.decoder for item in self.serial.frames}

    def characteristic(self, key: str) -> Characteristic | None:
        """The characteristic called ``key`` or with UUID ``key`` (16-bit or 128-bit form)."""
        if self.ble is None:
            return None
        uuid = normalize_uuid(key)
        for item in self.ble.characteristics:
            if key == item.name or uuid == item.uuid:
                return item
        return None

    def decoder_for(self, key: str, registry: DecoderRegistry) -> Decoder:
        """Decoder for a characteristic (name or UUID) or serial frame name, with streams applied.

        The returned callable takes ``(payload, DecodeContext)`` and returns a
        :class:`DecodeResult` whose samples are scaled, offset and range-checked per the profile's
        streams; the characteristic's ``options`` are merged under ``context.options``. Raises
        ``KeyError`` for an unknown key or decoder name.
        """
        options: Mapping[str, Any]
        base: Decoder
        item = self.characteristic(key)
        if item is not None:
            options = item.options
            if item.layout is not None:
                base = item.layout
            else:
                assert item.decoder is not None
                base = registry.get(item.decoder)
        else:
            frame = next((f for f in self.serial.frames if f.name == key), None) if self.serial else None
            if frame is None:
                raise KeyError(f"profile {self.id} has no characteristic or frame {key!r}; "
                               f"known: {', '.join(self.decoder_keys())}")
            options, base = frame.options, registry.get(frame.decoder)
        streams = self.streams

        def decode(payload: bytes, context: DecodeContext) -> DecodeResult:
            if options:
                context = replace(context, options={**options, **context.options})
            return apply_streams(base(payload, context), streams)

        return decode

    def make_framer(self) -> Framer:
        """A fresh framer for a serial profile; ``ValueError`` for a BLE profile."""
        if self.serial is None:
            raise ValueError(f"profile {self.id} is not a serial profile")
        return self.serial.make_framer()
