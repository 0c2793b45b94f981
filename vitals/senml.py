"""SenML (RFC 8428) packs from third-party gateways -> a :class:`~vitals.samples.Batch` (pure).

A pack arrives as JSON (``application/senml+json``) or CBOR (``application/senml+cbor``, with the
integer labels of RFC 8428 section 6). Base fields are resolved as the RFC says: the name is
``bn + n``, the time ``bt + t`` (seconds; below 2**28 it counts from ``now_ns``, passed in), the
value ``bv + v``, the unit ``u`` or else ``bu``. Labels ending in ``_`` are must-understand: none
is understood, so a pack carrying one is refused; other unknown labels are ignored.

Naming: a resolved name is ``{patient}:{device}:{metric}``, where patient and device are
VitalBridge identifiers and metric is a catalogue name (``spo2``), the metric's IEEE 11073 MDC
reference id (``MDC_PULS_OXIM_SAT_O2``) or its LOINC code (``59408-5``). A pack carries one device
of one patient (one batch). Values are numbers (``v``); units are converted to the catalogue unit
where the conversion is exact (see :mod:`vitals._senml_units`), a record without a unit is taken
to be in the catalogue unit, and any other unit is refused with the reason. Times are kept to the
microsecond.

Idempotency: SenML carries no sequence number, so the batch's key is made from the pack's
content: ``epoch`` is ``senml-`` and 32 hex digits of a SHA-256 over the records as parsed (labels
normalised, so the JSON and the CBOR form of one pack, or one pack serialised twice, share the
key) and ``seq`` is 0. A redelivery (or a re-send) of a pack is then a replay the cloud drops,
whatever its relative times resolve to when it comes again; a gateway that means two identical
packs as two readings tells them apart with any extra field (``"msgid": 17``), which the
digest covers and everything else ignores.

:func:`decode_senml` raises :class:`SenmlError` and nothing else, with a message saying what is wrong.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import cbor2

from vitals._senml_units import METRIC_UNITS, REFUSED_UNITS, UNIT_CONVERSIONS, conversion_for
from vitals.catalogue import CATALOGUE, Metric
from vitals.samples import Batch, Sample, Stream, is_identifier

__all__ = [
    "CBOR_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "MAX_RECORDS",
    "SENML_EPOCH_PREFIX",
    "SENML_LABELS",
    "SENML_PROFILE",
    "SenmlError",
    "accepted_units",
    "decode_senml",
    "encode_senml_cbor",
    "encode_senml_json",
    "is_senml_epoch",
    "resolve_metric",
]

JSON_CONTENT_TYPE = "application/senml+json"
CBOR_CONTENT_TYPE = "application/senml+cbor"
SENML_PROFILE = "senml"
"""The ``profile`` of every batch made from SenML."""
SENML_EPOCH_PREFIX = "senml-"
MAX_RECORDS = 1 << 16
_MAX_PAYLOAD_BYTES = 1 << 20
_MAX_TIME_NS = (1 << 62) - 1
_RELATIVE_LIMIT = Decimal(2**28)
_MICROSECOND = Decimal("0.000001")
_SENML_VERSION = 10
_MAX_INTEGER = 1 << 64
_MAX_NAME = 64 + 1 + 64 + 1 + 64  # patient, device and metric, each at most an identifier long
_MAX_SECONDS = Decimal(_MAX_TIME_NS) / 10**9 * 2  # a relative time may be negative: bounded both ways

SENML_LABELS: dict[str, int] = {
    "bver": -1, "bn": -2, "bt": -3, "bu": -4, "bv": -5, "bs": -16,
    "n": 0, "u": 1, "v": 2, "vs": 3, "vb": 4, "s": 5, "t": 6, "ut": 7, "vd": 8,
}
"""RFC 8428 section 6: the JSON label of each field and its CBOR integer label."""
_BY_CBOR_LABEL = {number: name for name, number in SENML_LABELS.items()}
_TEXT = frozenset({"bn", "bu", "n", "u", "vs"})
_NUMBER = frozenset({"bt", "bv", "bs", "t", "v", "s", "ut"})
# RFC 8428 section 4.5.1: the characters a resolved name may hold, and how it must start.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*")
_CONTENT_TYPES = {
    JSON_CONTENT_TYPE: "json", "application/json": "json",
    CBOR_CONTENT_TYPE: "cbor", "application/cbor": "cbor",
}


class SenmlError(ValueError):
    """Bytes that are not a SenML pack VitalBridge can take. The only exception :func:`decode_senml` raises."""


def _metric_aliases() -> dict[str, Metric]:
    aliases: dict[str, Metric] = {}
    for metric in CATALOGUE.values():
        for alias in (metric.name, metric.mdc_ref, metric.loinc):
            if alias:
                aliases[alias] = metric
    return aliases


_ALIASES = _metric_aliases()


def resolve_metric(name: str) -> Metric | None:
    """The catalogue metric named by ``name``: its catalogue name, MDC reference id or LOINC code."""
    return _ALIASES.get(name)


def accepted_units(metric: str) -> list[str]:
    """The units a SenML record of catalogue metric ``metric`` may carry (the catalogue unit first)."""
    entry = CATALOGUE[metric]
    units = [entry.unit, *UNIT_CONVERSIONS.get(entry.unit, {}), *METRIC_UNITS.get(metric, {})]
    return list(dict.fromkeys(units))


def is_senml_epoch(epoch: str) -> bool:
    """True when a batch key's ``epoch`` is a SenML pack's content key (no gateway spool behind it)."""
    return epoch.startswith(SENML_EPOCH_PREFIX)


def encode_senml_json(records: list[dict[str, Any]]) -> bytes:
    """Encode a pack given with JSON labels as ``application/senml+json`` bytes."""
    return json.dumps(records, separators=(",", ":"), allow_nan=False).encode()


def encode_senml_cbor(records: list[dict[str, Any]]) -> bytes:
    """Encode a pack given with JSON labels as ``application/senml+cbor`` bytes (integer labels)."""
    return cbor2.dumps([{SENML_LABELS.get(label, label): value for label, value in record.items()}
                        for record in records])


def decode_senml(
    payload: bytes,
    *,
    gateway: str,
    now_ns: int,
    content_type: str | None = None,
    max_values: int = MAX_RECORDS,
) -> Batch:
    """Decode an untrusted SenML pack from ``gateway`` into a :class:`Batch` of catalogue units.

    ``now_ns`` (Unix ns) is the time relative SenML times count from. ``content_type`` is the MQTT 5
    content type where the sender set one; otherwise JSON or CBOR is told from the first byte (a JSON
    pack starts with ``[``, a CBOR one with an array head). ``max_values`` bounds the records.
    Raises :class:`SenmlError` (and nothing else) naming the first problem found.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise SenmlError(f"payload must be bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    if not payload:
        raise SenmlError("empty payload")
    if len(payload) > _MAX_PAYLOAD_BYTES:
        raise SenmlError(f"payload is {len(payload)} bytes, over the {_MAX_PAYLOAD_BYTES} byte limit")
    if not is_identifier(gateway):
        raise SenmlError(f"gateway id {str(gateway)[:80]!r} is not a valid identifier")
    form = _form(payload, content_type)
    try:
        records = _load_json(payload) if form == "json" else _load_cbor(payload)
        return _to_batch(records, gateway, now_ns, max_values)
    except SenmlError:
        raise
    except Exception as exc:  # defence in depth: a parser bug must still surface as SenmlError
        raise SenmlError(f"malformed SenML pack: {type(exc).__name__}: {exc}") from None


def _form(payload: bytes, content_type: str | None) -> str:
    if content_type:
        base = content_type.split(";", 1)[0].strip().lower()
        form = _CONTENT_TYPES.get(base)
        if form is None:
            raise SenmlError(f"content type {content_type[:80]!r} is not SenML; send {JSON_CONTENT_TYPE} "
                             f"or {CBOR_CONTENT_TYPE}")
        return form
    # JSON text may start with white space or a byte order mark; a CBOR pack starts with an array
    # head (0x80..0x9f) or a tag, never with '[' (0x5b, a byte string head) or '{'.
    first = payload.lstrip(b" \t\r\n")
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:].lstrip(b" \t\r\n")
    return "json" if first[:1] in (b"[", b"{") else "cbor"


def _no_constants(name: str) -> Any:
    raise SenmlError(f"not valid SenML JSON: {name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SenmlError(f"not valid SenML JSON: a record repeats the label {key[:40]!r}")
        out[key] = value
    return out


def _load_json(payload: bytes) -> list[dict[str, Any]]:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SenmlError(f"not valid SenML JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise SenmlError(f"not valid SenML JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise SenmlError("not valid SenML JSON: nested too deeply for a pack of records") from None
    records = _pack(raw, "JSON")
    out: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        fields: dict[str, Any] = {}
        for label, value in record.items():
            if label not in SENML_LABELS and label.endswith("_"):
                raise SenmlError(f"record {index}: label {label[:40]!r} must be understood, and is not")
            fields[label] = value
        out.append(fields)
    return out


def _load_cbor(payload: bytes) -> list[dict[str, Any]]:
    try:
        raw = cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises a variety of types on hostile input
        raise SenmlError(f"not valid SenML CBOR: {exc}") from None
    records = _pack(raw, "CBOR")
    out: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        fields: dict[Any, Any] = {}
        for label, value in record.items():
            if isinstance(label, int) and not isinstance(label, bool):
                fields[_BY_CBOR_LABEL.get(label, label)] = value  # unknown integer labels kept for the key only
            elif isinstance(label, str):
                if label in SENML_LABELS:
                    raise SenmlError(f"record {index}: CBOR SenML labels {label!r} with the integer "
                                     f"{SENML_LABELS[label]}, not with text")
                if label.endswith("_"):
                    raise SenmlError(f"record {index}: label {label[:40]!r} must be understood, and is not")
                fields[label] = value
            else:
                raise SenmlError(f"record {index}: a CBOR label must be an integer or text, "
                                 f"got {type(label).__name__}")
        out.append(fields)
    return out


def _pack(raw: Any, form: str) -> list[dict[Any, Any]]:
    # cbor2 hands back what sits under the self-described CBOR tag (55799) as a tuple of frozendicts.
    if not isinstance(raw, list | tuple):
        raise SenmlError(f"a SenML pack is a {form} array of records, got {_kind(raw)}")
    if not raw:
        raise SenmlError("the SenML pack holds no records")
    for index, record in enumerate(raw):
        if not isinstance(record, Mapping):
            raise SenmlError(f"record {index}: a SenML record is a {form} map, got {_kind(record)}")
    return [dict(record) for record in raw]


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a map"
    return {list: "an array", tuple: "an array", str: "text", bytes: "bytes", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _check_types(record: dict[Any, Any], index: int) -> None:
    for label, value in record.items():
        if label in _TEXT and not isinstance(value, str):
            raise SenmlError(f"record {index}: {label!r} must be text, got {_kind(value)}")
        if label in _NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SenmlError(f"record {index}: {label!r} must be a number, got {_kind(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise SenmlError(f"record {index}: {label!r} must be a finite number, got {value}")
            if isinstance(value, int) and abs(value) > _MAX_INTEGER:
                raise SenmlError(f"record {index}: {label!r} is an integer too large to be a measurement")
        if label == "vb" and not isinstance(value, bool):
            raise SenmlError(f"record {index}: 'vb' must be a boolean, got {_kind(value)}")
        if label == "bver" and (isinstance(value, bool) or not isinstance(value, int)):
            raise SenmlError(f"record {index}: 'bver' must be an integer, got {_kind(value)}")


class _Base:
    """The base fields in force (RFC 8428 section 4.1: they apply to this and every later record)."""

    __slots__ = ("name", "time", "unit", "value")

    def __init__(self) -> None:
        self.name = ""
        self.time = Decimal(0)
        self.unit: str | None = None
        self.value: float | None = None


def _to_batch(records: list[dict[Any, Any]], gateway: str, now_ns: int, max_values: int) -> Batch:
    if len(records) > max_values:
        raise SenmlError(f"the pack carries {len(records)} records, over the {max_values} allowed per message")
    base = _Base()
    owner: tuple[str, str] | None = None
    by_metric: dict[str, list[Sample]] = {}
    names: dict[str, tuple[str, str, Metric]] = {}  # a pack repeats a few names many times
    for index, record in enumerate(records):
        _check_types(record, index)
        version = record.get("bver")
        if version is not None and not 1 <= version <= _SENML_VERSION:
            raise SenmlError(f"record {index}: SenML version {version} is not one this build reads "
                             f"(1..{_SENML_VERSION})")
        if "bn" in record:
            base.name = record["bn"]
        if "bt" in record:
            base.time = Decimal(record["bt"])
        if "bu" in record:
            base.unit = record["bu"]
        if "bv" in record:
            base.value = float(record["bv"])
        suffix = record.get("n", "")
        if len(base.name) + len(suffix) > _MAX_NAME:  # checked before joining: a huge bn repeats per record
            raise SenmlError(f"record {index}: name is {len(base.name) + len(suffix)} characters long, over "
                             f"the {_MAX_NAME} a '{{patient}}:{{device}}:{{metric}}' name can need")
        name = base.name + suffix
        known = names.get(name)
        if known is None:
            known = names[name] = _name(name, index)
        patient, device, metric = known
        if owner is None:
            owner = (patient, device)
        elif owner != (patient, device):
            raise SenmlError(f"record {index}: names patient {patient!r}, device {device!r}, but the pack began "
                             f"with patient {owner[0]!r}, device {owner[1]!r}; send one device of one patient "
                             f"per pack")
        value = _value(record, base, metric, index)
        time_ns = _time(record, base, now_ns, index)
        by_metric.setdefault(metric.name, []).append(Sample(metric.name, time_ns, value))
    assert owner is not None  # the pack holds at least one record
    streams = []
    for name in sorted(by_metric):
        samples = sorted(by_metric[name], key=lambda sample: sample.time_ns)
        for earlier, later in itertools.pairwise(samples):
            if earlier.time_ns == later.time_ns:
                raise SenmlError(f"{name}: two values at the same time ({later.time_ns} ns); "
                                 f"a stream holds one value per instant")
        streams.append(Stream.from_samples(name, CATALOGUE[name].unit, samples))
    return Batch(gateway=gateway, seq=0, patient=owner[0], device=owner[1], profile=SENML_PROFILE,
                 streams=tuple(streams), epoch=SENML_EPOCH_PREFIX + _content_key(records))


def _name(name: str, index: int) -> tuple[str, str, Metric]:
    if not name:
        raise SenmlError(f"record {index}: no name (neither 'bn' nor 'n' gives one)")
    if _NAME.fullmatch(name) is None:
        raise SenmlError(f"record {index}: name {name[:80]!r} holds characters SenML names may not "
                         f"(letters, digits and - : . / _, starting with a letter or digit)")
    parts = name.split(":")
    if len(parts) != 3:
        raise SenmlError(f"record {index}: name {name[:80]!r} is not '{{patient}}:{{device}}:{{metric}}'")
    patient, device, metric_name = parts
    for what, text in (("patient", patient), ("device", device)):
        if not is_identifier(text):
            raise SenmlError(f"record {index}: {what} {text[:80]!r} in name {name[:80]!r} is not a valid "
                             f"identifier")
    metric = resolve_metric(metric_name)
    if metric is None:
        raise SenmlError(f"record {index}: {metric_name[:80]!r} is no catalogue metric (a catalogue name, "
                         f"MDC reference id or LOINC code); known: {', '.join(sorted(CATALOGUE))}")
    return patient, device, metric


def _value(record: dict[Any, Any], base: _Base, metric: Metric, index: int) -> float:
    others = [label for label in ("vs", "vb", "vd") if label in record]
    if "v" not in record:
        if others:
            raise SenmlError(f"record {index}: {metric.name} takes a numeric value 'v', not {others[0]!r}")
        if "s" in record:
            raise SenmlError(f"record {index}: {metric.name} takes a numeric value 'v'; sums ('s') are not stored")
        raise SenmlError(f"record {index}: no value ('v')")
    if others:
        raise SenmlError(f"record {index}: a record carries one value, this one 'v' and {others[0]!r}")
    value = float(record["v"])
    if base.value is not None:
        value += base.value
    unit = record.get("u", base.unit)
    if unit is not None and unit != metric.unit:
        refused = REFUSED_UNITS.get(unit)
        conversion = None if refused else conversion_for(metric.name, metric.unit, unit)
        if conversion is None:
            why = refused or f"no exact conversion from {unit[:40]!r}"
            raise SenmlError(f"record {index}: unit {unit[:40]!r} cannot be taken for {metric.name} "
                             f"(catalogue unit {metric.unit!r}): {why}; accepted: "
                             f"{', '.join(accepted_units(metric.name))}")
        scale, offset = conversion
        # Twelve significant digits drop the binary noise of the conversion (98.6 [degF] is 37 Cel).
        value = float(f"{value * scale + offset:.12g}")
    if not math.isfinite(value):
        raise SenmlError(f"record {index}: value is not a finite number once resolved")
    return value


def _time(record: dict[Any, Any], base: _Base, now_ns: int, index: int) -> int:
    seconds = base.time + Decimal(record.get("t", 0))
    if abs(seconds) > _MAX_SECONDS:
        raise SenmlError(f"record {index}: time {seconds:.6g} s lies outside the representable range")
    relative = seconds < _RELATIVE_LIMIT  # RFC 8428 section 4.5.3: relative to the time of reception
    micros = int(seconds.quantize(_MICROSECOND, rounding=ROUND_HALF_EVEN) * 1_000_000)
    time_ns = micros * 1000 + (now_ns if relative else 0)
    if not 0 <= time_ns <= _MAX_TIME_NS:
        raise SenmlError(f"record {index}: time {seconds:.6f} s resolves outside the representable range")
    return time_ns


def _number_form(value: Any) -> Any:
    # 72, 72.0 and a CBOR half-float 72.0 are one number: integral floats count as integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _key_label(label: Any) -> str:
    if isinstance(label, str):
        return str(SENML_LABELS[label]) if label in SENML_LABELS else f"t{label}"
    return f"i{label}"  # an unknown CBOR integer label


def _content_key(records: list[dict[Any, Any]]) -> str:
    """32 hex digits of a SHA-256 over the records as parsed, labels as CBOR integers (the pack's identity).

    Serialised as JSON with sorted keys: the standard library does that in C, several times faster
    than canonical CBOR, and a pack may hold tens of thousands of records.
    """
    canonical = [{_key_label(label): _number_form(value) for label, value in record.items()} for record in records]
    try:
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=repr).encode()
    except (TypeError, ValueError):  # an ignored field holding a map with keys JSON cannot sort: its text form
        encoded = repr([sorted(record.items()) for record in canonical]).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]
