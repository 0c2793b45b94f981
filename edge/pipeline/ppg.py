"""Pulse detection on PPG: a streaming detector of systolic peaks in the band-passed pulse wave."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.pipeline._history import LocalMaxima

__all__ = ["PulseDetector"]

_MIN_INTERVAL_S = 0.25  # 240 /min
_AMPLITUDE_FRACTION = 0.5
_REFRACTORY_FRACTION = 0.6  # of the last pulse interval: the dicrotic wave comes earlier


class PulseDetector:
    """Streaming systolic-peak detector for a band-passed (0.5-8 Hz) PPG at ``fs`` Hz.

    A peak is the highest point within +-0.25 s that rises above half the running peak amplitude
    and comes at least 60 % of the previous pulse interval after the previous pulse (which keeps
    out the dicrotic wave). ``push(chunk)`` returns absolute sample indices of newly confirmed peaks; chunked and
    one-pass input give the same indices. Memory is bounded.
    """

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)
        self._maxima = LocalMaxima(round(_MIN_INTERVAL_S * fs))
        self._amplitude: float | None = None
        self._last: int | None = None
        self._interval = 0.0

    @property
    def held_samples(self) -> int:
        """Samples held in internal buffers."""
        return self._maxima.held

    def push(self, chunk: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Feed band-passed PPG samples; return absolute indices of newly confirmed pulse peaks."""
        x = np.maximum(np.asarray(chunk, dtype=np.float64), 0.0)
        indices, heights = self._maxima.push(x)
        pulses: list[int] = []
        for index, height in zip(indices.tolist(), heights.tolist(), strict=True):
            early = self._last is not None and index - self._last < _REFRACTORY_FRACTION * self._interval
            if self._amplitude is None or (height > _AMPLITUDE_FRACTION * self._amplitude and not early):
                pulses.append(index)
                self._amplitude = height if self._amplitude is None else 0.8 * self._amplitude + 0.2 * height
                if self._last is not None:
                    interval = index - self._last
                    # Follow the rhythm, but let a long gap (missed pulses) count for little.
                    self._interval = min(interval, 2.0 * self._interval) if self._interval else interval
                self._last = index
            else:
                # Small humps (dicrotic notch, noise) still let a dropping amplitude adapt down.
                self._amplitude *= 0.95
        return np.asarray(pulses, dtype=np.int64)
