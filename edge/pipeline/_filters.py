"""Streaming IIR filters for waveforms (internal): second-order sections with carried state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from edge.pipeline._gaps import WaveformClock
from edge.pipeline._stage import PipelineConfigError, Stage
from edge.pipeline._streams import replace_values
from vitals import Stream

__all__: list[str] = []


class StreamingSosFilter:
    """A fixed SOS cascade whose state carries across chunks (chunked == one pass).

    The state starts at the filter's steady state for the first sample, so a DC offset does not
    ring through the output. Each section runs as its own ``lfilter`` (the same direct form II
    transposed as ``sosfilt``): on the short chunks a gateway sees, ``sosfilt``'s per-call
    checks cost more than the filtering.
    """

    def __init__(self, sos: npt.NDArray[np.float64]) -> None:
        self.sos = np.array(sos, dtype=np.float64)
        self._sections = [(section[:3].copy(), section[3:].copy()) for section in self.sos]
        self._zi: list[npt.NDArray[np.float64]] | None = None

    def __call__(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Filter the next chunk."""
        if x.size == 0:
            return np.zeros(0)
        if self._zi is None:
            self._zi = list(sps.sosfilt_zi(self.sos) * x[0])
        y = x
        for k, (b, a) in enumerate(self._sections):
            y, self._zi[k] = sps.lfilter(b, a, y, zi=self._zi[k])
        return np.asarray(y, dtype=np.float64)


class WaveformFilterStage(Stage):
    """Base for waveform filter stages: designs its cascade at the stream's rate on first use, and
    starts it afresh after a gap in the stream (no ringing from the samples before it)."""

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        self._filter: StreamingSosFilter | None = None
        self._rate: float | None = None
        self._clock = WaveformClock()

    def design(self, fs: float) -> npt.NDArray[np.float64]:
        """Return the SOS cascade for sampling rate ``fs`` (Hz)."""
        raise NotImplementedError

    def process(self, stream: Stream) -> list[Stream]:
        """Return the chunk filtered (float values; ``scale`` kept as the quantisation hint)."""
        if len(stream) == 0:
            return []
        if stream.rate_hz is None:
            self.counters["rejected.not_regular"] += len(stream)
            return []
        gap = self._clock.starts_afresh(stream)
        if self._filter is None or stream.rate_hz != self._rate:
            if self._filter is not None:
                self.counters["rate_changes"] += 1
            self._rate = stream.rate_hz
            self._filter = StreamingSosFilter(self.design(stream.rate_hz))
        elif gap:
            self.counters["gaps"] += 1
            self._filter = StreamingSosFilter(self._filter.sos)
        return [replace_values(stream, self._filter(np.asarray(stream.values)), None, stream.scale)]


def band_sos(fs: float, low_hz: float, high_hz: float, order: int, where: str) -> npt.NDArray[np.float64]:
    """Butterworth band-pass (``order`` per edge) as SOS; the high edge is capped below Nyquist."""
    high = min(high_hz, 0.45 * fs)
    if not 0.0 < low_hz < high:
        raise PipelineConfigError(f"{where}: band {low_hz}-{high_hz} Hz does not fit a {fs} Hz stream")
    sos: npt.NDArray[np.float64] = sps.butter(order, [low_hz, high], btype="bandpass", fs=fs, output="sos")
    return sos


def notch_sos(fs: float, mains_hz: float, quality: float) -> npt.NDArray[np.float64] | None:
    """A mains notch at ``mains_hz`` as SOS, or None when it lies above Nyquist."""
    if mains_hz >= 0.5 * fs:
        return None
    b, a = sps.iirnotch(mains_hz, quality, fs=fs)
    sos: npt.NDArray[np.float64] = sps.tf2sos(b, a)
    return sos
