"""The wire codec: :class:`~vitals.samples.Batch` <-> compact, versioned CBOR bytes.

Layout of version 1 (a CBOR map; short keys keep small batches small)::

    {"v": 1, "gw": gateway, "ep": spool epoch (optional), "seq": n, "pt": patient, "dev": device,
     "prof": profile,
     "s": [{"m": metric, "u": unit, "t0": first time (ns),
            "hz": rate (regular streams)  |  "dt": [successive time steps in ns] (irregular),
            "enc": value encoding, "sc": scale (integer encodings), "d": value bytes,
            "q": quality bytes (omitted when every value is clean)}, ...]}

Value encodings are listed in :data:`VALUE_ENCODINGS`. ``decode_batch`` accepts untrusted bytes and
raises only :class:`WireError`, whose message says what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cbor2
import numpy as np
import numpy.typing as npt

from vitals import _waveform
from vitals.catalogue import CATALOGUE
from vitals.samples import Batch, Stream, is_identifier, regular_times

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_STREAMS",
    "MAX_VALUES_PER_STREAM",
    "VALUE_ENCODINGS",
    "WIRE_VERSION",
    "BatchTooLargeError",
    "WireError",
    "decode_batch",
    "encode_batch",
]

WIRE_VERSION = 1
MAX_PAYLOAD_BYTES = 1 << 20
MAX_STREAMS = 64
MAX_VALUES_PER_STREAM = 1 << 18
_MAX_TIME_NS = (1 << 62) - 1
_MAX_RATE_HZ = 10_000.0


class WireError(ValueError):
    """Bytes that are not a valid batch. The only exception :func:`decode_batch` raises."""


class BatchTooLargeError(WireError):
    """A batch that claims more values than the decoder was allowed to unpack."""


def _pack_f8(values: npt.NDArray[np.float64], _scale: float | None) -> bytes:
    return values.astype("<f8").tobytes()


def _unpack_f8(data: bytes, count: int, _scale: float | None) -> npt.NDArray[np.float64]:
    if len(data) != 8 * count:
        raise WireError(f"value bytes: {len(data)} bytes cannot hold {count} float64 values")
    return np.frombuffer(data, dtype="<f8").astype(np.float64)


def _integer_counts(values: npt.NDArray[np.float64], scale: float) -> npt.NDArray[np.int64]:
    counts = np.rint(values / scale).astype(np.int64)
    if not np.array_equal(counts * scale, values):
        raise ValueError("values are not exact multiples of the stream's scale")
    return counts


def _pack_dz(values: npt.NDArray[np.float64], scale: float | None) -> bytes:
    assert scale is not None
    return _waveform.encode_counts(_integer_counts(values, scale))


def _unpack_dz(data: bytes, count: int, scale: float | None) -> npt.NDArray[np.float64]:
    assert scale is not None
    try:
        counts = _waveform.decode_counts(data, count)
    except _waveform.WaveformCodecError as exc:
        raise WireError(f"value bytes: {exc}") from None
    with np.errstate(over="ignore"):  # a huge scale gives infinities, refused by the caller
        return counts.astype(np.float64) * scale


# name -> (pack, unpack, needs a scale)
VALUE_ENCODINGS: dict[str, tuple[Callable[..., bytes], Callable[..., npt.NDArray[np.float64]], bool]] = {
    "f8": (_pack_f8, _unpack_f8, False),
    "dz": (_pack_dz, _unpack_dz, True),
}
"""``f8``: float64 little-endian. ``dz``: lossless integer counts (see :mod:`vitals._waveform`)."""


def _encode_stream(stream: Stream) -> dict[str, Any]:
    count = len(stream)
    if count == 0:
        raise ValueError(f"stream {stream.metric!r} is empty")
    out: dict[str, Any] = {"m": stream.metric, "u": stream.unit, "t0": int(stream.times_ns[0])}
    if stream.rate_hz is not None:
        out["hz"] = float(stream.rate_hz)
    else:
        out["dt"] = [int(step) for step in np.diff(stream.times_ns)]
    encoding = "dz" if stream.scale is not None else "f8"
    pack = VALUE_ENCODINGS[encoding][0]
    out["enc"] = encoding
    if stream.scale is not None:
        out["sc"] = float(stream.scale)
    out["d"] = pack(stream.values, stream.scale)
    if np.any(stream.quality):
        out["q"] = stream.quality.tobytes()
    return out


def encode_batch(batch: Batch) -> bytes:
    """Encode ``batch`` to wire bytes. Raises ``ValueError`` for a batch the wire cannot carry."""
    for name in ("gateway", "patient", "device", "profile"):
        if not is_identifier(getattr(batch, name)):
            raise ValueError(f"{name} {getattr(batch, name)!r} is not a valid identifier")
    if not batch.streams:
        raise ValueError("a batch needs at least one stream")
    if batch.epoch and not is_identifier(batch.epoch):
        raise ValueError(f"epoch {batch.epoch!r} is not a valid identifier")
    root: dict[str, Any] = {"v": WIRE_VERSION, "gw": batch.gateway}
    if batch.epoch:
        root["ep"] = batch.epoch
    root.update(
        seq=batch.seq,
        pt=batch.patient,
        dev=batch.device,
        prof=batch.profile,
        s=[_encode_stream(stream) for stream in batch.streams],
    )
    payload = cbor2.dumps(root)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"encoded batch is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit")
    return payload


def _field(mapping: dict[Any, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in mapping:
        raise WireError(f"{where}: missing field {key!r}")
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise WireError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _identifier(mapping: dict[Any, Any], key: str, where: str) -> str:
    value = _field(mapping, key, str, where)
    if not is_identifier(value):
        raise WireError(f"{where}: field {key!r} is not a valid identifier: {value[:80]!r}")
    return str(value)


def _decode_times(raw: dict[Any, Any], count: int, where: str) -> tuple[npt.NDArray[np.int64], float | None]:
    start = _field(raw, "t0", int, where)
    if not 0 <= start <= _MAX_TIME_NS:
        raise WireError(f"{where}: start time {start} is out of range")
    if "hz" in raw:
        if "dt" in raw:
            raise WireError(f"{where}: a stream has either 'hz' or 'dt', not both")
        rate = float(_field(raw, "hz", (int, float), where))
        if not (math.isfinite(rate) and 0.0 < rate <= _MAX_RATE_HZ):
            raise WireError(f"{where}: sample rate {rate} Hz is out of range (0, {_MAX_RATE_HZ:g}]")
        # Checked before computing: a tiny rate would overflow the int64 times and wrap negative.
        if start + (count - 1) * (1.0e9 / rate) > _MAX_TIME_NS:
            raise WireError(f"{where}: sample times run past the representable range")
        return regular_times(start, rate, count), rate
    steps = _field(raw, "dt", list, where)
    if len(steps) != count - 1:
        raise WireError(f"{where}: {len(steps)} time steps for {count} values (expected {count - 1})")
    if any(isinstance(s, bool) or not isinstance(s, int) or not 0 < s <= _MAX_TIME_NS for s in steps):
        raise WireError(f"{where}: time steps must be positive integers (times strictly increasing)")
    total = start + sum(steps)
    if total > _MAX_TIME_NS:
        raise WireError(f"{where}: sample times run past the representable range")
    times = np.empty(count, dtype=np.int64)
    times[0] = start
    if count > 1:
        times[1:] = start + np.cumsum(np.asarray(steps, dtype=np.int64))
    return times, None


def _decode_stream(raw: Any, index: int, budget: list[int]) -> Stream:
    where = f"stream {index}"
    if not isinstance(raw, dict):
        raise WireError(f"{where}: expected a map, got {type(raw).__name__}")
    metric_name = _field(raw, "m", str, where)
    metric = CATALOGUE.get(metric_name)
    if metric is None:
        raise WireError(f"{where}: unknown metric {metric_name[:80]!r}")
    where = f"stream {index} ({metric_name})"
    unit = _field(raw, "u", str, where)
    if unit != metric.unit:
        raise WireError(f"{where}: unit {unit[:40]!r} is not the catalogue unit {metric.unit!r}")
    encoding = _field(raw, "enc", str, where)
    if encoding not in VALUE_ENCODINGS:
        raise WireError(f"{where}: unknown value encoding {encoding[:40]!r}")
    _pack, unpack, needs_scale = VALUE_ENCODINGS[encoding]
    scale: float | None = None
    if needs_scale:
        scale = float(_field(raw, "sc", (int, float), where))
        if not (math.isfinite(scale) and scale > 0.0):
            raise WireError(f"{where}: scale must be a positive finite number, got {scale}")
    elif "sc" in raw:
        raise WireError(f"{where}: encoding {encoding!r} takes no scale")
    data = _field(raw, "d", bytes, where)
    count = _value_count(raw, data, encoding, where)
    budget[0] -= count
    if budget[0] < 0:  # checked before unpacking: a small payload may claim millions of values
        raise BatchTooLargeError(f"{where}: the batch carries more values than the {budget[1]} allowed per batch")
    try:
        values = unpack(data, count, scale)
    except WireError as exc:
        raise WireError(f"{where}: {exc}") from None
    if not np.all(np.isfinite(values)):
        raise WireError(f"{where}: values must be finite numbers (no NaN or infinity)")
    times, rate = _decode_times(raw, count, where)
    if "q" in raw:
        quality_bytes = _field(raw, "q", bytes, where)
        if len(quality_bytes) != count:
            raise WireError(f"{where}: {len(quality_bytes)} quality bytes for {count} values")
        quality = np.frombuffer(quality_bytes, dtype=np.uint8)
    else:
        quality = np.zeros(count, dtype=np.uint8)
    return Stream(metric_name, unit, times, values, quality, rate_hz=rate, scale=scale)


def _value_count(raw: dict[Any, Any], data: bytes, encoding: str, where: str) -> int:
    count = len(data) // 8 if encoding == "f8" else _waveform.peek_count(data)
    if count is None or not 1 <= count <= MAX_VALUES_PER_STREAM:
        raise WireError(f"{where}: value count must be 1..{MAX_VALUES_PER_STREAM}")
    return count


def decode_batch(payload: bytes, *, max_values: int | None = None) -> Batch:
    """Decode untrusted wire bytes into a :class:`Batch`.

    Checks structure, identifiers, catalogue metrics and units, value encodings, finite values and
    strictly increasing times. ``max_values`` bounds the values of the whole batch; it is checked
    before any stream's values are unpacked, so a small payload cannot claim millions of them
    (:class:`BatchTooLargeError`). Raises :class:`WireError` (and nothing else) with a message
    naming the first problem found. Plausibility of the values is not checked here (see
    :func:`vitals.validate.check_plausible`).
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise WireError(f"payload must be bytes, got {type(payload).__name__}")
    if len(payload) == 0:
        raise WireError("empty payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit")
    try:
        raw = cbor2.loads(bytes(payload))
    except Exception as exc:  # cbor2 raises a variety of types on hostile input
        raise WireError(f"not valid CBOR: {exc}") from None
    try:
        return _decode_root(raw, max_values)
    except WireError:
        raise
    except Exception as exc:  # defence in depth: a decoder bug must still surface as WireError
        raise WireError(f"malformed batch: {type(exc).__name__}: {exc}") from None


def _decode_root(raw: Any, max_values: int | None) -> Batch:
    if not isinstance(raw, dict):
        raise WireError(f"expected a CBOR map at the top level, got {type(raw).__name__}")
    version = _field(raw, "v", int, "batch")
    if version != WIRE_VERSION:
        raise WireError(f"unsupported wire version {version} (this build reads version {WIRE_VERSION})")
    seq = _field(raw, "seq", int, "batch")
    if not 0 <= seq < (1 << 63):
        raise WireError(f"batch: sequence number {seq} is out of range")
    streams_raw = _field(raw, "s", list, "batch")
    limit = MAX_STREAMS * MAX_VALUES_PER_STREAM if max_values is None else max_values
    budget = [limit, limit]  # remaining, allowed
    if not 1 <= len(streams_raw) <= MAX_STREAMS:
        raise WireError(f"batch: must carry 1..{MAX_STREAMS} streams, carries {len(streams_raw)}")
    return Batch(
        gateway=_identifier(raw, "gw", "batch"),
        seq=seq,
        patient=_identifier(raw, "pt", "batch"),
        device=_identifier(raw, "dev", "batch"),
        profile=_identifier(raw, "prof", "batch"),
        streams=tuple(_decode_stream(s, i, budget) for i, s in enumerate(streams_raw)),
        epoch=_identifier(raw, "ep", "batch") if "ep" in raw else "",
    )
