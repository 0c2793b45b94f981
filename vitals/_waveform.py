"""Lossless codec for integer sample counts (waveforms): prediction + block-adaptive Rice coding.

Version 2 layout (all integers little-endian)::

    version=2 (u8) | order (u8) | count (u32) | exceptions (u32) | remainder bytes (u32)
    | k per block (u8 x blocks) | exception values (u40 x exceptions)
    | remainder bits (sum of k over samples, padded to a byte) | unary quotient bits (to the end)

The samples are differenced ``order`` times (0-3, a fixed polynomial predictor picked per call);
each residual is zigzag-mapped to ``u`` and split into ``q = u >> k`` and ``r = u & (2**k - 1)``,
with ``k`` chosen per block of :data:`BLOCK` samples to minimise the bit count. Quotients go to a
separate unary stream (``q`` zeros then a one) and remainders to a fixed-width-per-block stream, so
both directions are vectorised numpy (no per-sample Python loop). A quotient of :data:`_QMAX` or
more is an escape: its full ``u`` is stored in the exception table. Version 1 blocks (differences,
zigzag, byte planes, deflate) still decode.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["BLOCK", "WaveformCodecError", "decode_counts", "encode_counts", "peek_count"]

_VERSION = 2
_HEADER_V1 = struct.Struct("<BBIB")
_HEADER_V2 = struct.Struct("<BBIII")
_MAX_COUNT_MAGNITUDE = 1 << 31
_WIDTHS = (1, 2, 4, 8)
_MAX_ORDER = 3
BLOCK = 128
"""Samples per Rice parameter block."""
_QMAX = 24  # quotient at which a residual escapes to the exception table
_MAX_K = 36  # residuals of order-3 differences of 32-bit counts fit in 35 bits after zigzag
_EXCEPTION_BYTES = 5


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


def _block_parameters(u: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Return the Rice parameter k per block that minimises that block's bit count."""
    blocks = -(-u.size // BLOCK)
    padded = np.zeros(blocks * BLOCK, dtype=np.uint64)
    padded[: u.size] = u
    grid = padded.reshape(blocks, BLOCK)
    sizes = np.full(blocks, BLOCK, dtype=np.int64)
    sizes[-1] = u.size - (blocks - 1) * BLOCK
    # A good k lies near log2 of the block mean; search a small neighbourhood exactly.
    mean = grid.sum(axis=1, dtype=np.float64) / sizes
    centre = np.clip(np.floor(np.log2(np.maximum(mean, 1.0))).astype(np.int64), 0, _MAX_K)
    best_cost = np.full(blocks, np.iinfo(np.int64).max, dtype=np.int64)
    best_k = centre.copy()
    for shift in (-2, -1, 0, 1, 2):
        k = np.clip(centre + shift, 0, _MAX_K)
        q = grid >> k.astype(np.uint64)[:, None]
        escaped = q >= _QMAX
        # An escape costs its unary code and the exception entry but no remainder bits.
        bits = np.where(escaped, _QMAX + 1 + 8 * _EXCEPTION_BYTES, q.astype(np.int64) + 1 + k[:, None])
        bits[np.arange(BLOCK)[None, :] >= sizes[:, None]] = 0
        cost = bits.sum(axis=1)
        better = cost < best_cost
        best_cost = np.where(better, cost, best_cost)
        best_k = np.where(better, k, best_k)
    return np.asarray(best_k, dtype=np.int64)


def _pack_bits_variable(values: npt.NDArray[np.uint64], widths: npt.NDArray[np.int64]) -> bytes:
    """Pack each value in its own width (MSB first) into one byte-padded bit stream."""
    total = int(widths.sum())
    bits = np.zeros(total, dtype=np.uint8)
    starts = np.cumsum(widths) - widths
    for j in range(int(widths.max(initial=0))):
        live = widths > j
        shift = (widths[live] - 1 - j).astype(np.uint64)
        bits[starts[live] + j] = ((values[live] >> shift) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits).tobytes()


def encode_counts(counts: npt.NDArray[np.int64]) -> bytes:
    """Encode integer sample counts (|count| < 2**31, at most 2**32 - 1 of them) losslessly."""
    counts = np.asarray(counts, dtype=np.int64).ravel()
    if counts.size and int(np.max(np.abs(counts))) >= _MAX_COUNT_MAGNITUDE:
        raise ValueError("waveform counts must lie within +-2**31")
    if counts.size == 0:
        return _HEADER_V2.pack(_VERSION, 0, 0, 0, 0)
    # Pick the predictor order with the smallest residuals in total (a cheap proxy for bits).
    candidates = [_zigzag(_difference(counts, order)) for order in range(_MAX_ORDER + 1)]
    order = min(range(_MAX_ORDER + 1), key=lambda o: float(candidates[o].sum(dtype=np.float64)))
    u = candidates[order]
    k_block = _block_parameters(u)
    k = np.repeat(k_block, BLOCK)[: u.size]
    q = u >> k.astype(np.uint64)
    escaped = q >= _QMAX
    exceptions = u[escaped]
    q_coded = np.where(escaped, _QMAX, q.astype(np.int64))
    remainder_widths = np.where(escaped, 0, k)
    remainders = _pack_bits_variable(u & ((np.uint64(1) << k.astype(np.uint64)) - np.uint64(1)),
                                     remainder_widths)
    unary = np.zeros(int(q_coded.sum()) + u.size, dtype=np.uint8)
    unary[np.cumsum(q_coded + 1) - 1] = 1
    exception_bytes = (
        exceptions.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :_EXCEPTION_BYTES].tobytes()
    )
    return b"".join((
        _HEADER_V2.pack(_VERSION, order, u.size, exceptions.size, len(remainders)),
        k_block.astype(np.uint8).tobytes(),
        exception_bytes,
        remainders,
        np.packbits(unary).tobytes(),
    ))


def peek_count(data: bytes) -> int | None:
    """Return the number of samples a block declares, or None if the header is unreadable."""
    if len(data) < 1:
        return None
    header = _HEADER_V1 if data[0] == 1 else _HEADER_V2
    if len(data) < header.size:
        return None
    return int(header.unpack_from(data)[2])


def decode_counts(data: bytes, expected_count: int) -> npt.NDArray[np.int64]:
    """Decode a block made by :func:`encode_counts`; raises :class:`WaveformCodecError` if invalid."""
    data = bytes(data)
    if len(data) >= 1 and data[0] == 1:
        return _decode_v1(data, expected_count)
    if len(data) < _HEADER_V2.size:
        raise WaveformCodecError("waveform block shorter than its header")
    version, order, count, exception_count, remainder_bytes = _HEADER_V2.unpack_from(data)
    if version != _VERSION:
        raise WaveformCodecError(f"unsupported waveform block version {version}")
    if order > _MAX_ORDER:
        raise WaveformCodecError(f"unsupported difference order {order}")
    if count != expected_count:
        raise WaveformCodecError(f"block holds {count} samples, {expected_count} expected")
    if exception_count > count:
        raise WaveformCodecError("more exceptions than samples")
    blocks = -(-count // BLOCK)
    position = _HEADER_V2.size
    if len(data) < position + blocks + exception_count * _EXCEPTION_BYTES:
        raise WaveformCodecError("waveform block truncated in its parameter table")
    k_block = np.frombuffer(data, dtype=np.uint8, count=blocks, offset=position).astype(np.int64)
    position += blocks
    if int(k_block.max(initial=0)) > _MAX_K:
        raise WaveformCodecError(f"Rice parameter above {_MAX_K}")
    raw_exceptions = np.zeros((exception_count, 8), dtype=np.uint8)
    raw_exceptions[:, :_EXCEPTION_BYTES] = np.frombuffer(
        data, dtype=np.uint8, count=exception_count * _EXCEPTION_BYTES, offset=position
    ).reshape(exception_count, _EXCEPTION_BYTES)
    exceptions = raw_exceptions.view("<u8").reshape(exception_count).astype(np.uint64)
    position += exception_count * _EXCEPTION_BYTES
    k = np.repeat(k_block, BLOCK)[:count]
    return _decode_streams(data, position, order, count, k, exceptions, remainder_bytes)


def _decode_streams(
    data: bytes,
    position: int,
    order: int,
    count: int,
    k: npt.NDArray[np.int64],
    exceptions: npt.NDArray[np.uint64],
    remainder_bytes: int,
) -> npt.NDArray[np.int64]:
    if len(data) < position + remainder_bytes:
        raise WaveformCodecError("waveform block truncated in its remainder stream")
    remainder_bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8, count=remainder_bytes, offset=position))
    unary = np.unpackbits(np.frombuffer(data, dtype=np.uint8, offset=position + remainder_bytes))
    codes = np.flatnonzero(unary)
    if count == 0:
        if remainder_bytes or unary.size or exceptions.size:
            raise WaveformCodecError("trailing bytes after an empty block")
        return np.zeros(0, dtype=np.int64)
    if codes.size != count:
        raise WaveformCodecError(f"unary stream holds {codes.size} codes, {count} expected")
    if unary.size - (int(codes[-1]) + 1) >= 8:
        raise WaveformCodecError("trailing bytes after the unary stream")
    q = np.diff(codes, prepend=np.int64(-1)) - 1
    if int(q.max()) > _QMAX:
        raise WaveformCodecError("quotient above the escape code")
    escaped = q == _QMAX
    if int(escaped.sum()) != exceptions.size:
        raise WaveformCodecError("escape codes and exception table disagree")
    widths = np.where(escaped, 0, k)
    if -(-int(widths.sum()) // 8) != remainder_bytes:
        raise WaveformCodecError("remainder stream length disagrees with the Rice parameters")
    u = (q.astype(np.uint64) << k.astype(np.uint64)) | _read_bits_variable(remainder_bits, widths)
    u[escaped] = exceptions
    return _reconstruct(u, order)


def _read_bits_variable(bits: npt.NDArray[np.uint8], widths: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    values = np.zeros(widths.size, dtype=np.uint64)
    starts = np.cumsum(widths) - widths
    for j in range(int(widths.max(initial=0))):
        live = widths > j
        values[live] = (values[live] << np.uint64(1)) | bits[starts[live] + j].astype(np.uint64)
    return values


def _reconstruct(u: npt.NDArray[np.uint64], order: int) -> npt.NDArray[np.int64]:
    values = _unzigzag(u)
    with np.errstate(over="ignore"):
        for _ in range(order):
            values = np.cumsum(values, dtype=np.int64)
    if values.size and int(np.max(np.abs(values))) >= _MAX_COUNT_MAGNITUDE:
        raise WaveformCodecError("decoded counts outside +-2**31")
    return values


def _decode_v1(data: bytes, expected_count: int) -> npt.NDArray[np.int64]:
    if len(data) < _HEADER_V1.size:
        raise WaveformCodecError("waveform block shorter than its header")
    _version, order, count, width = _HEADER_V1.unpack_from(data)
    if order > 2:
        raise WaveformCodecError(f"unsupported difference order {order}")
    if width not in _WIDTHS:
        raise WaveformCodecError(f"unsupported residual width {width}")
    if count != expected_count:
        raise WaveformCodecError(f"block holds {count} samples, {expected_count} expected")
    expected_bytes = count * width
    inflater = zlib.decompressobj()
    try:
        planes = inflater.decompress(data[_HEADER_V1.size:], expected_bytes + 1)
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
