"""Declarative fixed-layout decoder: a vendor describes a characteristic's bytes in YAML, no code.

A layout is a list of fields. Each field has a type (``u8`` ... ``s32``, ``f32`` for IEEE 754,
``sfloat``/``float`` for IEEE 11073-20601), an ``offset`` (or none: it then follows the previous
present field, as GATT packs optional fields), an endianness, and what it feeds: a catalogue
``metric`` (a sample), a ``status`` key (a device fact), or nothing (a flags byte that other fields
test with ``present_if``). Raw values are emitted unscaled: the profile's stream ``scale`` and
``offset`` are applied once, by the shared code in :mod:`device_profiles.profile`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from device_profiles.errors import DecodeError
from device_profiles.ieee11073 import decode_float, decode_sfloat
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.catalogue import CATALOGUE
from vitals.samples import Sample

__all__ = ["FIELD_TYPES", "FixedLayout", "LayoutField", "LayoutSpecError", "parse_layout"]

FIELD_TYPES: dict[str, int] = {
    "u8": 1, "s8": 1, "u16": 2, "s16": 2, "u24": 3, "s24": 3, "u32": 4, "s32": 4,
    "f32": 4, "sfloat": 2, "float": 4,
}
"""Size in bytes of every field type."""

class LayoutSpecError(ValueError):
    """A layout description that cannot work; ``path`` locates the field inside the layout."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class Presence:
    """The field is present when ``(flags_field & mask) == equals``."""

    field: str
    mask: int
    equals: int


@dataclass(frozen=True, slots=True)
class LayoutField:
    """One field of a fixed layout (see the module docstring)."""

    name: str
    type: str
    offset: int | None
    endian: str
    metric: str | None
    status: str | None
    invalid: frozenset[int]
    present_if: Presence | None


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def _read(data: bytes, kind: str, endian: str) -> tuple[int, float | None, str | None]:
    """Return (raw integer, value or None, reason when None) for one field's bytes."""
    order: Any = endian
    raw = int.from_bytes(data, order)
    if kind == "f32":
        value = struct.unpack("<f" if endian == "little" else ">f", data)[0]
        return raw, (value if math.isfinite(value) else None), (None if math.isfinite(value) else "not finite")
    if kind in ("sfloat", "float"):
        measured = decode_sfloat(raw) if kind == "sfloat" else decode_float(raw)
        if measured.special is not None:
            return raw, None, measured.special.value
        return raw, measured.value, None
    value_int = _signed(raw, 8 * len(data)) if kind.startswith("s") else raw
    return raw, float(value_int), None


class FixedLayout:
    """A decoder built from a layout description; call it like any registered decoder."""

    def __init__(self, fields: Sequence[LayoutField], *, allow_trailing_bytes: bool = False) -> None:
        self.fields = tuple(fields)
        self.allow_trailing_bytes = allow_trailing_bytes

    def __call__(self, payload: bytes, context: DecodeContext) -> DecodeResult:
        """Decode ``payload``: samples stamped ``context.received_ns``, raw (unscaled) values."""
        raws: dict[str, int] = {}
        samples: list[Sample] = []
        status: dict[str, Any] = {}
        notes: list[str] = []
        cursor = 0
        end = 0
        for spec in self.fields:
            if spec.present_if is not None:
                flags = raws.get(spec.present_if.field)
                if flags is None or (flags & spec.present_if.mask) != spec.present_if.equals:
                    continue
            start = cursor if spec.offset is None else spec.offset
            size = FIELD_TYPES[spec.type]
            if start + size > len(payload):
                raise DecodeError(
                    f"payload is {len(payload)} bytes; field {spec.name!r} needs bytes {start}..{start + size - 1}"
                )
            raw, value, reason = _read(payload[start : start + size], spec.type, spec.endian)
            raws[spec.name] = raw
            cursor = start + size
            end = max(end, cursor)
            if raw in spec.invalid:
                value, reason = None, f"invalid marker 0x{raw:X}"
            target = spec.metric or spec.status
            if target is None:
                continue
            if value is None:
                notes.append(f"{target}: no value ({reason}) in field {spec.name!r}")
            elif spec.metric is not None:
                samples.append(Sample(spec.metric, context.received_ns, value))
            else:
                status[target] = value if spec.type in ("f32", "sfloat", "float") else int(value)
        if not self.allow_trailing_bytes and len(payload) > end:
            raise DecodeError(f"payload is {len(payload)} bytes; the layout ends at byte {end}")
        return DecodeResult(tuple(samples), status, tuple(notes))


def parse_layout(spec: Mapping[str, Any]) -> FixedLayout:
    """Build a :class:`FixedLayout` from its (schema-valid) description; raise :class:`LayoutSpecError`."""
    fields: list[LayoutField] = []
    seen: set[str] = set()
    for index, item in enumerate(spec.get("fields", ())):
        path: tuple[str | int, ...] = ("fields", index)
        name = str(item["name"])
        if name in seen:
            raise LayoutSpecError(f"field name {name!r} is used twice", (*path, "name"))
        metric = item.get("metric")
        if metric is not None and metric not in CATALOGUE:
            raise LayoutSpecError(
                f"unknown metric {metric!r}; known: {', '.join(sorted(CATALOGUE))}", (*path, "metric")
            )
        presence = None
        if "present_if" in item:
            gate = item["present_if"]
            if gate["field"] not in seen:
                raise LayoutSpecError(
                    f"present_if names {gate['field']!r}, which is not an earlier field", (*path, "present_if")
                )
            mask = 1 << int(gate["bit"]) if "bit" in gate else int(gate["mask"])
            presence = Presence(str(gate["field"]), mask, int(gate.get("equals", mask)))
        if index == 0 and "offset" not in item:
            offset: int | None = 0
        else:
            offset = int(item["offset"]) if "offset" in item else None
        fields.append(
            LayoutField(
                name=name,
                type=str(item["type"]),
                offset=offset,
                endian=str(item.get("endian", "little")),
                metric=metric,
                status=item.get("status"),
                invalid=frozenset(int(v) for v in item.get("invalid", ())),
                present_if=presence,
            )
        )
        seen.add(name)
    return FixedLayout(fields, allow_trailing_bytes=bool(spec.get("allow_trailing_bytes", False)))
