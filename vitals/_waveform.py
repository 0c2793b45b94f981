"""Lossless codec for integer sample counts (waveforms): differences, zigzag, byte planes, deflate.

Layout: ``version (1 byte) | order (1 byte) | count (uint32 LE) | width (1 byte) | deflate(planes)``.
``order`` is how many times the samples were differenced (0-2, picked per call as the order with
the smallest residuals); residuals are zigzag-mapped to unsigned integers of ``width`` bytes and
stored plane by plane (all low bytes, then all next bytes ...) so deflate sees long runs.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

_VERSION = 1
_HEADER = struct.Struct("<BBIB")
_MAX_COUNT_MAGNITUDE = 1 << 31
_WIDTHS = (1, 2, 4, 8)


class WaveformCodecError(ValueError):
    """Bytes that are not a valid waveform block."""


def _difference(counts: npt.NDArray[np.int64], order: int) -> npt.NDArray[np.int64]:
    residual = counts
    for _ in range(order):
        residual = np.diff(residual, prepend=np.int64(0))
    return residual


def _zigzag(values: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    return ((values << 1) ^ (values >> 63)).astype(np.uint64)


def _unzigzag(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return ((values >> np.uint64(1)).astype(np.int64)) ^ -((values & np.uint64(1)).astype(np.int64))


def encode_counts(counts: npt.NDArray[np.int64]) -> bytes:
    """Encode integer sample counts (|count| < 2**31) losslessly."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and int(np.max(np.abs(counts))) >= _MAX_COUNT_MAGNITUDE:
        raise ValueError("waveform counts must lie within +-2**31")
    # Pick the difference order whose residuals are smallest in total: smooth waveforms favour 1-2.
    candidates = [_zigzag(_difference(counts, order)) for order in range(3)]
    best_order = min(range(3), key=lambda order: int(candidates[order].sum(dtype=np.float64)))
    best = candidates[best_order]
    peak = int(best.max(initial=0))
    width = next(w for w in _WIDTHS if peak < (1 << (8 * w)))
    planes = best.astype(f"<u{width}").view(np.uint8).reshape(-1, width).T.tobytes()
    return _HEADER.pack(_VERSION, best_order, counts.size, width) + zlib.compress(planes, 6)


def peek_count(data: bytes) -> int | None:
    """Return the number of samples a block declares, or None if the header is unreadable."""
    if len(data) < _HEADER.size:
        return None
    return int(_HEADER.unpack_from(data)[2])


def decode_counts(data: bytes, expected_count: int) -> npt.NDArray[np.int64]:
    """Decode a block made by :func:`encode_counts`; raises :class:`WaveformCodecError` if invalid."""
    if len(data) < _HEADER.size:
        raise WaveformCodecError("waveform block shorter than its header")
    version, order, count, width = _HEADER.unpack_from(data)
    if version != _VERSION:
        raise WaveformCodecError(f"unsupported waveform block version {version}")
    if order > 2:
        raise WaveformCodecError(f"unsupported difference order {order}")
    if width not in _WIDTHS:
        raise WaveformCodecError(f"unsupported residual width {width}")
    if count != expected_count:
        raise WaveformCodecError(f"block holds {count} samples, {expected_count} expected")
    expected_bytes = count * width
    inflater = zlib.decompressobj()
    try:
        planes = inflater.decompress(data[_HEADER.size:], expected_bytes + 1)
    except zlib.error as exc:
        raise WaveformCodecError(f"corrupt compressed residuals: {exc}") from None
    if len(planes) != expected_bytes or not inflater.eof or inflater.unused_data:
        raise WaveformCodecError(
            f"residuals hold {len(planes)} bytes, {expected_bytes} expected (or trailing bytes)"
        )
    residual = np.frombuffer(planes, dtype=np.uint8).reshape(width, count).T.copy()
    zigzagged = residual.view(f"<u{width}").reshape(count).astype(np.uint64)
    values = _unzigzag(zigzagged)
    with np.errstate(over="ignore"):
        for _ in range(order):
            values = np.cumsum(values, dtype=np.int64)
    return values
