"""The wire codec: exact bytes, round trips, and untrusted input that yields a Batch or WireError only."""

from __future__ import annotations

import copy
import math
import struct
import warnings
from typing import Any

import cbor2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vitals.catalogue import CATALOGUE, MetricKind
from vitals.codec import (
    MAX_PAYLOAD_BYTES,
    MAX_STREAMS,
    MAX_VALUES_PER_STREAM,
    VALUE_ENCODINGS,
    WIRE_VERSION,
    WireError,
    decode_batch,
    encode_batch,
)
from vitals.samples import Batch, Stream
from vitals.validate import check_density

# ---------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------

_ID_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ID_REST = _ID_FIRST + "_.-"

identifiers = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_ID_FIRST),
    st.text(alphabet=_ID_REST, max_size=63),
)
metrics = st.sampled_from(sorted(CATALOGUE))
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
start_times = st.integers(min_value=0, max_value=1 << 61)
scales = st.sampled_from([1.0, 0.5, 0.1, 0.001, 0.005, 1.0 / 1024, 2.5e-3, 10.0])
counts = st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1)


@st.composite
def irregular_streams(draw: st.DrawFn) -> Stream:
    metric = draw(metrics)
    n = draw(st.integers(min_value=1, max_value=40))
    start = draw(start_times)
    steps = draw(st.lists(st.integers(min_value=1, max_value=10**12), min_size=n - 1, max_size=n - 1))
    times = np.cumsum([start, *steps])
    quality = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    if draw(st.booleans()):
        scale = draw(scales)
        ints = np.asarray(draw(st.lists(counts, min_size=n, max_size=n)), dtype=np.int64)
        return Stream(metric, CATALOGUE[metric].unit, times, ints * scale, quality, scale=scale)
    values = draw(st.lists(finite_floats, min_size=n, max_size=n))
    return Stream(metric, CATALOGUE[metric].unit, times, values, quality)


@st.composite
def regular_streams(draw: st.DrawFn, max_values: int = 300) -> Stream:
    metric = draw(st.sampled_from(sorted(m for m in CATALOGUE if CATALOGUE[m].kind is MetricKind.WAVEFORM)))
    n = draw(st.integers(min_value=1, max_value=max_values))
    rate = draw(st.one_of(st.sampled_from([1.0, 25.0, 125.0, 250.0, 360.0, 500.0, 10_000.0]),
                          st.floats(min_value=0.01, max_value=10_000.0)))
    start = draw(start_times)
    clean = draw(st.booleans())
    quality = None if clean else draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    if draw(st.booleans()):
        scale = draw(scales)
        # Waveform-like counts: a random walk, sometimes with large jumps, within +-2**31.
        ints = np.asarray(draw(st.lists(counts, min_size=n, max_size=n)), dtype=np.int64)
        if draw(st.booleans()):
            ints = np.clip(np.cumsum(ints // 2**20), -(2**31) + 1, 2**31 - 1)
        return Stream.regular(metric, CATALOGUE[metric].unit, start, rate, ints * scale, quality, scale=scale)
    values = draw(st.lists(finite_floats, min_size=n, max_size=n))
    return Stream.regular(metric, CATALOGUE[metric].unit, start, rate, values, quality)


@st.composite
def batches(draw: st.DrawFn, max_values: int = 300) -> Batch:
    streams = draw(st.lists(st.one_of(irregular_streams(), regular_streams(max_values)), min_size=1, max_size=4))
    return Batch(
        gateway=draw(identifiers),
        seq=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        patient=draw(identifiers),
        device=draw(identifiers),
        profile=draw(identifiers),
        streams=tuple(streams),
        epoch=draw(st.one_of(st.just(""), identifiers)),
    )


def _decode_quietly(payload: bytes) -> Batch | None:
    """Decode; return the Batch or None on WireError. Anything else, and any warning, fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            batch = decode_batch(payload)
        except WireError as exc:
            assert str(exc), "a WireError must say what is wrong"
            batch = None
    assert not caught, f"decode_batch emitted warnings: {[str(w.message) for w in caught]}"
    return batch


# ---------------------------------------------------------------------------------------------------
# Exact bytes
# ---------------------------------------------------------------------------------------------------

_SMALL_BATCH = Batch("gw1", 7, "p1", "ox1", "generic.plx",
                     (Stream("spo2", "%", [1000, 2000], [97.0, 96.0], [0, 2]),))
_SMALL_BYTES = bytes.fromhex(
    "a761760162677763677731637365710762707462703163646576636f78316470726f666b67656e657269632e706c78"
    "617381a7616d6473706f32617561256274301903e8626474811903e863656e63626638616450000000000040584000"
    "000000000058406171420002"
)


def test_encode_small_batch_gives_exact_bytes() -> None:
    assert encode_batch(_SMALL_BATCH) == _SMALL_BYTES


def test_decode_small_batch_gives_whole_batch() -> None:
    decoded = decode_batch(_SMALL_BYTES)
    assert decoded == _SMALL_BATCH
    assert decoded.streams[0].samples()[1].quality == 2
    assert decoded.sample_count == 2


def test_clean_quality_is_omitted_from_the_wire() -> None:
    batch = Batch("gw1", 0, "p1", "d1", "prof", (Stream("heart_rate", "/min", [5], [60.0], [0]),))
    stream = cbor2.loads(encode_batch(batch))["s"][0]
    assert "q" not in stream
    assert stream == {"m": "heart_rate", "u": "/min", "t0": 5, "dt": [], "enc": "f8",
                      "d": struct.pack("<d", 60.0)}


def test_regular_stream_carries_rate_not_times() -> None:
    stream = Stream.regular("ecg", "mV", 10**18, 250.0, [0.001, -0.002, 0.003], scale=0.001)
    raw = cbor2.loads(encode_batch(Batch("gw", 1, "p", "d", "prof", (stream,))))["s"][0]
    assert raw["hz"] == 250.0 and "dt" not in raw
    assert raw["enc"] == "dz" and raw["sc"] == 0.001
    assert decode_batch(encode_batch(Batch("gw", 1, "p", "d", "prof", (stream,)))).streams[0] == stream


# ---------------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_round_trip_preserves_every_batch(batch: Batch) -> None:
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    for ours, theirs in zip(decoded.streams, batch.streams, strict=True):
        # Bit-exact values (equality alone would let -0.0 pass for 0.0).
        assert ours.values.tobytes() == theirs.values.tobytes()


def test_scale_stream_with_extreme_counts_round_trips() -> None:
    ints = np.array([2**31 - 1, -(2**31) + 1, 0, 2**31 - 1, -(2**31) + 1], dtype=np.int64)
    stream = Stream.regular("ppg", "1", 0, 100.0, ints * 1.0, scale=1.0)
    batch = Batch("gw", 1, "p", "d", "prof", (stream,))
    assert decode_batch(encode_batch(batch)) == batch


def test_encode_refuses_values_that_are_not_multiples_of_the_scale() -> None:
    stream = Stream.regular("ecg", "mV", 0, 250.0, [0.0015], scale=0.001)
    with pytest.raises(ValueError, match="multiples"):
        encode_batch(Batch("gw", 1, "p", "d", "prof", (stream,)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("gateway", "bad id"), ("patient", ""), ("device", "x" * 65), ("profile", "-leading")],
)
def test_encode_refuses_invalid_identifiers(field: str, value: str) -> None:
    fields: dict[str, Any] = {"gateway": "gw", "seq": 1, "patient": "p", "device": "d", "profile": "prof",
                              "streams": _SMALL_BATCH.streams}
    fields[field] = value
    with pytest.raises(ValueError, match=field):
        encode_batch(Batch(**fields))


def test_encode_refuses_empty_batch_and_empty_stream() -> None:
    with pytest.raises(ValueError, match="at least one stream"):
        encode_batch(Batch("gw", 1, "p", "d", "prof", ()))
    with pytest.raises(ValueError, match="empty"):
        encode_batch(Batch("gw", 1, "p", "d", "prof", (Stream("spo2", "%", [], [], []),)))


# ---------------------------------------------------------------------------------------------------
# Untrusted input: Batch or WireError, nothing else
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xa0")  # empty map
@example(b"\x9f" * 2000)  # deeply nested indefinite arrays
@example(b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff")  # map claiming 2**64 - 1 entries
@example(b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff")  # byte string claiming 2**64 - 1 bytes
@example(b"\xd8\x1c\x81\xd8\x1d\x00")  # shared reference to itself
def test_arbitrary_bytes_decode_or_raise_wire_error(payload: bytes) -> None:
    _decode_quietly(payload)


def _valid_payloads() -> st.SearchStrategy[bytes]:
    return batches(max_values=40).map(encode_batch)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_payloads(), st.data())
def test_mutated_payloads_decode_or_raise_wire_error(payload: bytes, data: st.DataObject) -> None:
    mutated = bytearray(payload)
    action = data.draw(st.sampled_from(["flip", "truncate", "extend", "overwrite"]))
    if action == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(mutated) - 1))
            mutated[index] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "truncate":
        del mutated[data.draw(st.integers(0, len(mutated) - 1)):]
    elif action == "extend":
        mutated += data.draw(st.binary(min_size=1, max_size=16))
    else:
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    _decode_quietly(bytes(mutated))


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=24),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_payloads(), st.data())
def test_valid_structure_with_a_field_replaced_decodes_or_raises_wire_error(
    payload: bytes, data: st.DataObject
) -> None:
    raw = cbor2.loads(payload)
    stream = raw["s"][data.draw(st.integers(0, len(raw["s"]) - 1))]
    target = data.draw(st.sampled_from([raw, stream]))
    key = data.draw(st.sampled_from([*sorted(target), "zz"]))
    if data.draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = data.draw(cbor_values)
    _decode_quietly(cbor2.dumps(raw))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_hostile_numbers_in_stream_fields_decode_or_raise_wire_error(data: st.DataObject) -> None:
    raw = _valid_raw(regular=data.draw(st.booleans()), scaled=True)
    stream = raw["s"][0]
    numbers = st.one_of(st.integers(-(2**80), 2**80), st.floats())
    for key in data.draw(st.lists(st.sampled_from(["t0", "hz", "sc", "seq"]), min_size=1, unique=True)):
        if key == "seq":
            raw["seq"] = data.draw(numbers)
        elif key != "hz" or "hz" in stream:
            stream[key] = data.draw(numbers)
    _decode_quietly(cbor2.dumps(raw))


@pytest.mark.parametrize("scale", [1e308, 5e-324])
def test_extreme_scales_decode_or_raise_quietly(scale: float) -> None:
    raw = _valid_raw(regular=True, scaled=True)
    raw["s"][0]["sc"] = scale
    batch = _decode_quietly(cbor2.dumps(raw))
    assert (batch is None) == (scale > 1.0)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_batch(bytearray(_SMALL_BYTES)) == _SMALL_BATCH
    assert decode_batch(memoryview(_SMALL_BYTES)) == _SMALL_BATCH


@pytest.mark.parametrize("payload", ["text", None, 12, [1]])
def test_decode_refuses_non_bytes(payload: Any) -> None:
    with pytest.raises(WireError, match="payload must be bytes"):
        decode_batch(payload)


# ---------------------------------------------------------------------------------------------------
# Each documented error, hand-built
# ---------------------------------------------------------------------------------------------------


def _valid_raw(*, regular: bool = False, scaled: bool = False) -> dict[str, Any]:
    if regular:
        stream = Stream.regular("ecg", "mV", 10**18, 250.0, [0.001, 0.002, 0.003],
                                scale=0.001 if scaled else None)
    else:
        stream = Stream("spo2", "%", [10**18, 10**18 + 10**9, 10**18 + 2 * 10**9], [97.0, 96.0, 95.0],
                        [0, 0, 0], scale=1.0 if scaled else None)
    return cbor2.loads(encode_batch(Batch("gw-1", 5, "pt-1", "dev-1", "prof.x", (stream,))))


def _error_of(raw: Any) -> str:
    with pytest.raises(WireError) as info:
        decode_batch(cbor2.dumps(raw))
    return str(info.value)


def test_hand_built_valid_raw_decodes() -> None:
    for regular in (False, True):
        for scaled in (False, True):
            batch = decode_batch(cbor2.dumps(_valid_raw(regular=regular, scaled=scaled)))
            assert batch.gateway == "gw-1" and batch.seq == 5 and batch.sample_count == 3


@pytest.mark.parametrize("key", ["v", "gw", "seq", "pt", "dev", "prof", "s"])
def test_missing_batch_field_is_named(key: str) -> None:
    raw = _valid_raw()
    del raw[key]
    assert f"missing field {key!r}" in _error_of(raw)


@pytest.mark.parametrize("key", ["m", "u", "t0", "dt", "enc", "d"])
def test_missing_stream_field_is_named(key: str) -> None:
    raw = _valid_raw()
    del raw["s"][0][key]
    message = _error_of(raw)
    assert message.startswith("stream 0")
    assert f"missing field {key!r}" in message


def test_missing_scale_for_dz_is_named() -> None:
    raw = _valid_raw(regular=True, scaled=True)
    del raw["s"][0]["sc"]
    assert "missing field 'sc'" in _error_of(raw)


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [("batch", "seq", "5"), ("batch", "seq", True), ("batch", "gw", 5), ("batch", "s", {}),
     ("batch", "v", 1.0), ("stream", "m", b"spo2"), ("stream", "t0", 1.5), ("stream", "dt", "1"),
     ("stream", "d", [1.0]), ("stream", "q", "ab")],
)
def test_wrong_type_is_named(where: str, key: str, value: Any) -> None:
    raw = _valid_raw()
    target = raw if where == "batch" else raw["s"][0]
    target[key] = value
    message = _error_of(raw)
    assert f"field {key!r} has the wrong type ({type(value).__name__})" in message


def test_stream_that_is_not_a_map_is_named() -> None:
    raw = _valid_raw()
    raw["s"] = [[1, 2]]
    assert _error_of(raw) == "stream 0: expected a map, got list"


def test_top_level_that_is_not_a_map_is_named() -> None:
    assert _error_of([1, 2, 3]) == "expected a CBOR map at the top level, got list"


def test_unknown_metric_is_named() -> None:
    raw = _valid_raw()
    raw["s"][0]["m"] = "spo3"
    assert _error_of(raw) == "stream 0: unknown metric 'spo3'"


def test_unit_mismatch_is_named() -> None:
    raw = _valid_raw()
    raw["s"][0]["u"] = "1"
    assert _error_of(raw) == "stream 0 (spo2): unit '1' is not the catalogue unit '%'"


@pytest.mark.parametrize("steps", [[0, 10**9], [10**9, -1], [10**9, 0]])
def test_non_increasing_times_are_named(steps: list[int]) -> None:
    raw = _valid_raw()
    raw["s"][0]["dt"] = steps
    assert "times strictly increasing" in _error_of(raw)


def test_wrong_number_of_time_steps_is_named() -> None:
    raw = _valid_raw()
    raw["s"][0]["dt"] = [10**9]
    assert "1 time steps for 3 values (expected 2)" in _error_of(raw)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_named(bad: float) -> None:
    raw = _valid_raw()
    raw["s"][0]["d"] = struct.pack("<3d", 97.0, bad, 95.0)
    assert "values must be finite numbers (no NaN or infinity)" in _error_of(raw)


def test_too_many_streams_is_named() -> None:
    raw = _valid_raw()
    raw["s"] = [copy.deepcopy(raw["s"][0]) for _ in range(MAX_STREAMS + 1)]
    assert _error_of(raw) == f"batch: must carry 1..{MAX_STREAMS} streams, carries {MAX_STREAMS + 1}"
    raw["s"] = raw["s"][:MAX_STREAMS]
    assert len(decode_batch(cbor2.dumps(raw)).streams) == MAX_STREAMS


def test_no_streams_is_named() -> None:
    raw = _valid_raw()
    raw["s"] = []
    assert "carries 0" in _error_of(raw)


@pytest.mark.parametrize("version", [0, 2, WIRE_VERSION + 100])
def test_wrong_version_is_named(version: int) -> None:
    raw = _valid_raw()
    raw["v"] = version
    assert _error_of(raw) == f"unsupported wire version {version} (this build reads version {WIRE_VERSION})"


def test_invalid_identifier_is_named() -> None:
    raw = _valid_raw()
    raw["pt"] = "patient/../1"
    assert _error_of(raw) == "batch: field 'pt' is not a valid identifier: 'patient/../1'"


@pytest.mark.parametrize("seq", [-1, 2**63])
def test_sequence_out_of_range_is_named(seq: int) -> None:
    raw = _valid_raw()
    raw["seq"] = seq
    assert f"sequence number {seq} is out of range" in _error_of(raw)


def test_unknown_value_encoding_is_named() -> None:
    raw = _valid_raw()
    raw["s"][0]["enc"] = "zstd"
    assert "unknown value encoding 'zstd'" in _error_of(raw)


def test_scale_on_float_encoding_is_refused() -> None:
    raw = _valid_raw()
    raw["s"][0]["sc"] = 1.0
    assert "encoding 'f8' takes no scale" in _error_of(raw)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_bad_scale_is_named(scale: float) -> None:
    raw = _valid_raw(regular=True, scaled=True)
    raw["s"][0]["sc"] = scale
    assert "scale must be a positive finite number" in _error_of(raw)


def test_float_value_bytes_of_wrong_length_are_named() -> None:
    raw = _valid_raw()
    raw["s"][0]["d"] += b"\x00"
    assert "25 bytes cannot hold 3 float64 values" in _error_of(raw)


def test_empty_value_bytes_are_refused() -> None:
    raw = _valid_raw()
    raw["s"][0]["d"] = b""
    assert f"value count must be 1..{MAX_VALUES_PER_STREAM}" in _error_of(raw)


def test_corrupt_waveform_block_is_named() -> None:
    raw = _valid_raw(regular=True, scaled=True)
    raw["s"][0]["d"] = raw["s"][0]["d"][:-1] + b"\x00\x00"
    assert _error_of(raw).startswith("stream 0 (ecg): value bytes:")


def test_quality_length_mismatch_is_named() -> None:
    raw = _valid_raw()
    raw["s"][0]["q"] = b"\x00"
    assert "1 quality bytes for 3 values" in _error_of(raw)


def test_hz_and_dt_together_are_refused() -> None:
    raw = _valid_raw(regular=True)
    raw["s"][0]["dt"] = [1, 1]
    assert "either 'hz' or 'dt', not both" in _error_of(raw)


@pytest.mark.parametrize("rate", [0.0, -250.0, 10_001.0, math.inf, math.nan])
def test_rate_out_of_range_is_named(rate: float) -> None:
    raw = _valid_raw(regular=True)
    raw["s"][0]["hz"] = rate
    assert "sample rate" in _error_of(raw)


@pytest.mark.parametrize("start", [-1, 2**62])
def test_start_time_out_of_range_is_named(start: int) -> None:
    raw = _valid_raw()
    raw["s"][0]["t0"] = start
    assert f"start time {start} is out of range" in _error_of(raw)


def test_tiny_rate_cannot_wrap_times_negative() -> None:
    # 3 samples at 1e-10 Hz would lie 2e19 ns apart: past int64, so they must be refused, not wrapped.
    raw = _valid_raw(regular=True)
    raw["s"][0]["hz"] = 1e-10
    assert "sample times run past the representable range" in _error_of(raw)


def test_irregular_times_past_the_range_are_refused() -> None:
    raw = _valid_raw()
    raw["s"][0]["dt"] = [2**61, 2**61]
    assert "sample times run past the representable range" in _error_of(raw)


def test_empty_and_oversized_payloads_are_named() -> None:
    with pytest.raises(WireError, match="empty payload"):
        decode_batch(b"")
    with pytest.raises(WireError, match=f"over the {MAX_PAYLOAD_BYTES} byte limit"):
        decode_batch(b"\xa0" * (MAX_PAYLOAD_BYTES + 1))


def test_not_cbor_is_named() -> None:
    with pytest.raises(WireError, match="not valid CBOR"):
        decode_batch(b"\x1c")
    with pytest.raises(WireError, match="not valid CBOR"):
        decode_batch(_SMALL_BYTES[:-3])


# ---------------------------------------------------------------------------------------------------
# Spool epoch, value budget, density
# ---------------------------------------------------------------------------------------------------


def test_the_epoch_travels_only_when_set() -> None:
    with_epoch = Batch("gw1", 7, "p1", "ox1", "generic.plx", _SMALL_BATCH.streams, epoch="0a1b2c3d4e5f6071")
    raw = cbor2.loads(encode_batch(with_epoch))
    assert raw["ep"] == "0a1b2c3d4e5f6071"
    assert decode_batch(encode_batch(with_epoch)) == with_epoch
    assert "ep" not in cbor2.loads(_SMALL_BYTES)  # a legacy gateway's batch: no epoch on the wire
    assert decode_batch(_SMALL_BYTES).epoch == ""


@pytest.mark.parametrize("epoch", ["", "bad epoch", "x" * 65, 7, None, b"ab"])
def test_a_bad_epoch_on_the_wire_is_refused(epoch: Any) -> None:
    raw = _valid_raw()
    raw["ep"] = epoch
    assert "'ep'" in _error_of(raw)


def test_encode_refuses_a_bad_epoch() -> None:
    with pytest.raises(ValueError, match="epoch"):
        encode_batch(Batch("gw", 1, "p", "d", "prof", _SMALL_BATCH.streams, epoch="not an id"))


def _spy_unpack(monkeypatch: pytest.MonkeyPatch, encoding: str) -> list[int]:
    calls: list[int] = []
    pack, unpack, scaled = VALUE_ENCODINGS[encoding]

    def spy(data: bytes, count: int, scale: float | None) -> Any:
        calls.append(count)
        return unpack(data, count, scale)

    monkeypatch.setitem(VALUE_ENCODINGS, encoding, (pack, spy, scaled))
    return calls


def test_the_value_budget_is_checked_before_any_unpacking(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Stream.regular("ecg", "mV", 10**18, 250.0, np.arange(1000) * 0.001, scale=0.001)
    payload = encode_batch(Batch("gw", 1, "p", "d", "prof", (stream,)))
    calls = _spy_unpack(monkeypatch, "dz")
    with pytest.raises(WireError, match="stream 0 \\(ecg\\): the batch carries more values than the 999 allowed"):
        decode_batch(payload, max_values=999)
    assert calls == []
    assert decode_batch(payload, max_values=1000).sample_count == 1000
    assert calls == [1000]


def test_the_value_budget_covers_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    streams = tuple(Stream.regular("ppg", "1", 10**18 + i, 100.0, np.zeros(600), scale=1.0) for i in range(2))
    payload = encode_batch(Batch("gw", 1, "p", "d", "prof", streams))
    calls = _spy_unpack(monkeypatch, "dz")
    with pytest.raises(WireError, match=r"stream 1 .*more values than the 1000 allowed"):
        decode_batch(payload, max_values=1000)
    assert calls == [600]  # the second stream's values were never unpacked


def _at_rate(metric: str, rate_hz: float, count: int = 1001) -> Batch:
    stream = Stream.regular(metric, CATALOGUE[metric].unit, 10**18, rate_hz, np.zeros(count))
    return Batch("gw", 1, "p", "d", "prof", (stream,))


@pytest.mark.parametrize("metric", sorted(CATALOGUE))
def test_density_passes_at_the_metric_rate_and_just_within_the_slack(metric: str) -> None:
    max_hz = CATALOGUE[metric].max_hz
    assert check_density(_at_rate(metric, max_hz)) == []
    assert check_density(_at_rate(metric, max_hz * 1.009)) == []
    assert check_density(_at_rate(metric, max_hz * 100, count=1)) == []  # one value has no rate


@pytest.mark.parametrize("metric", sorted(CATALOGUE))
def test_density_refuses_just_above_the_slack(metric: str) -> None:
    max_hz = CATALOGUE[metric].max_hz
    reasons = check_density(_at_rate(metric, max_hz * 1.011))
    assert len(reasons) == 1
    assert reasons[0].startswith(f"stream 0 ({metric}): 1001 values in ")
    assert f"over the {max_hz:g}/s any {metric} device reports" in reasons[0]
    assert check_density(_at_rate(metric, max_hz * 1.011), slack=1.02) == []


@settings(max_examples=100, deadline=None)
@given(metric=st.sampled_from(sorted(CATALOGUE)), count=st.integers(2, 5000), factor=st.floats(0.01, 100))
def test_density_verdict_follows_the_claimed_rate(metric: str, count: int, factor: float) -> None:
    max_hz = CATALOGUE[metric].max_hz
    reasons = check_density(_at_rate(metric, max_hz * factor, count))
    if factor <= 1.0:
        assert reasons == []
    elif factor >= 1.02 and count >= 200:
        assert len(reasons) == 1
