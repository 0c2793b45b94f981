"""The lossless waveform codec (vitals._waveform): round trips, compactness, hostile bytes."""

from __future__ import annotations

import contextlib
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit._pipeline_signals import synthetic_ecg
from vitals import _waveform
from vitals._waveform import WaveformCodecError, decode_counts, encode_counts, peek_count


def test_small_block_bytes_are_exact() -> None:
    data = encode_counts(np.array([0, 1, 2, 3, 4], dtype=np.int64))
    # Order 2: residuals 0, 1, 0, 0, 0 -> zigzag 0, 2, 0, 0, 0; one block with k = 0, so no
    # remainder bits and the unary codes 1 001 1 1 1 (+ a zero pad bit) = 0x9e.
    header = struct.pack("<BBIII", 2, 2, 5, 0, 0)
    assert data == header + b"\x00" + b"\x9e"
    assert decode_counts(data, 5).tolist() == [0, 1, 2, 3, 4]
    assert peek_count(data) == 5


def test_empty_block_round_trips() -> None:
    data = encode_counts(np.zeros(0, dtype=np.int64))
    assert decode_counts(data, 0).size == 0


def test_extremes_round_trip_through_the_exception_table() -> None:
    counts = np.array([2**31 - 1, -(2**31) + 1, 0, 5, -7, 2**31 - 1] * 50, dtype=np.int64)
    assert np.array_equal(decode_counts(encode_counts(counts), counts.size), counts)


def test_out_of_range_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_counts(np.array([2**31], dtype=np.int64))


def test_version_1_blocks_still_decode() -> None:
    counts = np.array([5, 7, 9, 8, 2], dtype=np.int64)
    residual = np.diff(counts, prepend=0)
    zigzag = ((residual << 1) ^ (residual >> 63)).astype("<u1")
    legacy = struct.pack("<BBIB", 1, 1, counts.size, 1) + zlib.compress(zigzag.tobytes())
    assert decode_counts(legacy, counts.size).tolist() == counts.tolist()
    assert peek_count(legacy) == counts.size


def test_realistic_ecg_beats_int16_zlib_by_three_times() -> None:
    ecg, _ = synthetic_ecg(60.0, 250.0)
    rng = np.random.default_rng(1)
    counts = np.rint((ecg + rng.normal(0.0, 0.01, ecg.size)) / 0.005).astype(np.int64)  # 5 uV LSB
    encoded = encode_counts(counts)
    raw = counts.astype("<i2").tobytes()
    assert len(raw) / len(encoded) >= 3.0
    assert len(encoded) < len(zlib.compress(raw, 9))
    assert np.array_equal(decode_counts(encoded, counts.size), counts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), max_size=600))
def test_any_counts_round_trip(values: list[int]) -> None:
    counts = np.array(values, dtype=np.int64)
    assert decode_counts(encode_counts(counts), counts.size).tolist() == values


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 400))
def test_hostile_bytes_raise_only_the_codec_error(data: bytes, expected: int) -> None:
    try:
        decoded = decode_counts(data, expected)
    except WaveformCodecError:
        return
    assert decoded.size == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-3000, 3000), min_size=1, max_size=300), st.data())
def test_mutated_blocks_raise_only_the_codec_error(values: list[int], data: st.DataObject) -> None:
    block = bytearray(encode_counts(np.array(values, dtype=np.int64)))
    position = data.draw(st.integers(0, len(block) - 1))
    block[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(block)))
    with contextlib.suppress(WaveformCodecError):
        decode_counts(bytes(block[:cut]), len(values))


def test_block_size_is_public() -> None:
    assert _waveform.BLOCK == 128
