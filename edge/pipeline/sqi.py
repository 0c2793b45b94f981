"""Signal quality indices per fixed window of a waveform (0 = unusable, 1 = clean).

* ``kurtosis`` (ECG): a clean ECG is spiky (sharp QRS over a quiet baseline), so its sample
  distribution has a high kurtosis (typically > 8); noise pulls it towards 3 (Gaussian) and a flat
  line has none. Score: ``clip((kurtosis - 3) / 5, 0, 1)``.
* ``periodicity`` (PPG): the pulse wave repeats, so the window's normalised autocorrelation has a
  strong peak at a lag of one beat (0.3-2 s); its height is the score.

Windows are aligned to absolute sample indices (``index * window`` to ``(index + 1) * window``), so
scores do not depend on how the stream was chunked. Memory: one window of samples.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["WindowedSqi", "kurtosis_sqi", "periodicity_sqi"]


def kurtosis_sqi(window: npt.NDArray[np.float64]) -> float:
    """Kurtosis-based quality of one ECG window (0..1)."""
    centred = window - window.mean()
    variance = float(np.mean(centred * centred))
    if variance <= 1e-18:
        return 0.0
    kurtosis = float(np.mean(centred**4)) / (variance * variance)
    return float(np.clip((kurtosis - 3.0) / 5.0, 0.0, 1.0))


def periodicity_sqi(window: npt.NDArray[np.float64], fs: float) -> float:
    """Autocorrelation-based quality of one PPG window (0..1): the highest normalised
    autocorrelation at lags of 0.3-2 s."""
    centred = window - window.mean()
    energy = float(np.dot(centred, centred))
    first, last = int(0.3 * fs), min(int(2.0 * fs), centred.size // 2)
    if energy <= 1e-18 or last <= first:
        return 0.0
    size = 1 << int(2 * centred.size - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum), size)[: centred.size]
    # Unbiased: each lag averages fewer products.
    lags = np.arange(first, last)
    scaled = correlation[first:last] * centred.size / (centred.size - lags)
    return float(np.clip(scaled.max() / energy, 0.0, 1.0))


class WindowedSqi:
    """Scores consecutive windows of ``window_s`` seconds of a waveform at ``fs`` Hz."""

    def __init__(self, fs: float, window_s: float, kind: str) -> None:
        if kind not in ("kurtosis", "periodicity"):
            raise ValueError(f"unknown signal quality index {kind!r}")
        self.fs = fs
        self.kind = kind
        self.window = max(round(window_s * fs), 8)
        self._buffer: list[npt.NDArray[np.float64]] = []
        self._buffered = 0
        self._index = 0  # index of the window being filled
        self.scores: dict[int, float] = {}  # recent completed windows only

    def push(self, chunk: npt.NDArray[np.float64]) -> list[tuple[int, float]]:
        """Feed samples; return ``(window index, score)`` for each window completed."""
        done: list[tuple[int, float]] = []
        position = 0
        while position < chunk.size:
            take = min(self.window - self._buffered, chunk.size - position)
            self._buffer.append(chunk[position:position + take])
            self._buffered += take
            position += take
            if self._buffered == self.window:
                samples = np.concatenate(self._buffer)
                score = kurtosis_sqi(samples) if self.kind == "kurtosis" else periodicity_sqi(samples, self.fs)
                done.append((self._index, score))
                self.scores[self._index] = score
                self.scores.pop(self._index - 4, None)
                self._index += 1
                self._buffer, self._buffered = [], 0
        return done

    @property
    def held(self) -> int:
        """Samples buffered (at most one window)."""
        return self._buffered
