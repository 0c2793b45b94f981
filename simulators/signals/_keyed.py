"""Random numbers addressed by index, so any slice of a stream can be drawn on its own.

Chunked generation must equal one-pass generation: a value drawn for sample ``k`` must not depend on
which chunk asked for it. Numbers are drawn in fixed blocks, each from its own numpy Generator seeded
with ``(seed, stream, block)``; a slice gathers the blocks it touches.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["keyed_normal", "keyed_uniform", "stream_key"]

_BLOCK = 4096


def stream_key(name: str) -> int:
    """A stable integer for a stream name (not Python's salted ``hash``)."""
    return zlib.crc32(name.encode("utf-8"))


def _keyed(seed: int, key: int, index: npt.ArrayLike, normal: bool) -> npt.NDArray[np.float64]:
    idx = np.asarray(index, dtype=np.int64)
    if idx.size == 0:
        return np.zeros(idx.shape, dtype=np.float64)
    if int(idx.min()) < 0:
        raise ValueError("keyed random indices must be >= 0")
    blocks = idx // _BLOCK
    out = np.empty(idx.shape, dtype=np.float64)
    for block in np.unique(blocks):
        rng = np.random.default_rng([seed & 0xFFFFFFFF, key, int(block)])
        draws = rng.standard_normal(_BLOCK) if normal else rng.random(_BLOCK)
        here = blocks == block
        out[here] = draws[idx[here] - int(block) * _BLOCK]
    return out


def keyed_uniform(seed: int, key: int, index: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniform [0, 1) numbers for integer ``index`` values of stream ``key``."""
    return _keyed(seed, key, index, normal=False)


def keyed_normal(seed: int, key: int, index: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Standard normal numbers for integer ``index`` values of stream ``key``."""
    return _keyed(seed, key, index, normal=True)
