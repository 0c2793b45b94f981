"""Vector helpers of the R-peak detector's energy envelope (internal): IIR filtering, row gathers,
window sums by doubling, and the search for the highest humps within a radius (plain Python for a
few, numpy for many; the two agree, which a property test checks)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

__all__ = ["dominant", "dominant_many", "iir", "rows", "window_sums"]

_NEIGHBOURS = 8  # humps compared on each side; plenty for a smooth envelope


def iir(b: npt.NDArray[np.float64], a: npt.NDArray[np.float64], x: npt.NDArray[np.float64],
        zi: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``scipy.signal.lfilter(b, a, x, zi=zi)``: the filtered ``x`` (new memory) and the final state."""
    y, zf = sps.lfilter(b, a, x, zi=zi)
    return y, zf


def rows(values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.float64]:
    """Copies of ``values[start:start + width]`` for each start, as rows (all inside ``values``)."""
    step = values.strides[0]
    windows = np.ndarray((values.size - width + 1, width), np.float64, values, 0, (step, step))
    gathered: npt.NDArray[np.float64] = windows[starts]
    return gathered


def window_sums(values: npt.NDArray[np.float64], width: int, out: npt.NDArray[np.float64],
                 work: npt.NDArray[np.float64], spare: npt.NDArray[np.float64]) -> None:
    """Sums of ``width`` consecutive ``values`` into ``out`` (``values.size - width + 1`` of them).

    Built by doubling (sums of 2, 4, 8, ... values, alternating between the two buffers, each at
    least ``values.size`` long) and adding the blocks that make up ``width``: about 2 log2(width)
    vector additions, cheaper than a running sum, and every output is added up from its own window
    in a fixed order, so chunks cannot change a value.
    """
    count = out.size
    offset, size, sums, first = 0, 1, values, True
    buffers = (work, spare)
    while True:
        if width & size:
            block = sums[offset:offset + count]
            if first:
                np.copyto(out, block)
                first = False
            else:
                np.add(out, block, out=out)
            offset += size
        if 2 * size > width:
            return
        doubled = buffers[0][:sums.size - size]
        np.add(sums[:-size], sums[size:], out=doubled)
        buffers = buffers[::-1]
        sums = doubled
        size *= 2


def dominant(humps: list[int], heights: list[float], radius: int, first: int, stop: int) -> list[int]:
    """Positions (in ``humps``, ascending) of the humps in ``[first, stop)`` that no hump within
    ``radius`` samples beats: a later one higher, or an earlier one at least as high."""
    kept = []
    n = len(humps)
    for i in range(n):
        hump = humps[i]
        if hump < first:
            continue
        if hump >= stop:
            break
        height = heights[i]
        if not height > 0.0:
            continue
        beaten = False
        for j in range(i + 1, min(i + _NEIGHBOURS + 1, n)):
            if humps[j] - hump > radius:
                break
            if heights[j] > height:
                beaten = True
                break
        if not beaten:
            for j in range(i - 1, max(i - _NEIGHBOURS, 0) - 1, -1):
                if hump - humps[j] > radius:
                    break
                if heights[j] >= height:
                    beaten = True
                    break
        if not beaten:
            kept.append(i)
    return kept


def dominant_many(humps: npt.NDArray[np.int64], heights: npt.NDArray[np.float64], radius: int,
                   first: int, stop: int) -> npt.NDArray[np.bool_]:
    """:func:`dominant` vectorised (for many humps): a mask over ``humps``."""
    keep = heights > 0.0
    for shift in range(1, min(_NEIGHBOURS, humps.size - 1) + 1):
        near = humps[shift:] - humps[:-shift] <= radius
        if not near.any():
            break  # humps are ascending: no hump has this many others within reach
        later_higher = near & (heights[shift:] > heights[:-shift])
        # For booleans, ``keep > beaten`` is ``keep and not beaten``.
        np.greater(keep[:-shift], later_higher, out=keep[:-shift])
        np.greater(keep[shift:], near ^ later_higher, out=keep[shift:])
    keep &= (humps >= first) & (humps < stop)
    return keep
