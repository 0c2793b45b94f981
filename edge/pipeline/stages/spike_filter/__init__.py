"""``spike_filter``: streaming Hampel filter for slow vitals (isolated spikes out, steps kept).

Each reading is compared with the median of the ``spike_half_window`` readings on each side; if it
lies more than ``spike_sigmas`` robust standard deviations (1.4826 x MAD) and more than
``spike_min_step`` (default 3 x the catalogue resolution) from that median it is a spike: replaced
by the median and flagged ``Quality.ARTIFACT`` (``replaced``). A reading beyond a clinical threshold
(``thresholds``) is never replaced, only flagged (``flagged_alert``): an alert must reach the doctor.
The centred window holds back ``spike_half_window`` readings; ``flush`` releases them once the newest
is ``spike_max_hold_s`` old (judged on the readings at hand), or at once when ``final``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from edge.pipeline._options import NonNegativeNumber, PositiveNumber, StageOptions, ThresholdsOption
from edge.pipeline._stage import Stage
from edge.pipeline._streams import irregular
from edge.pipeline.thresholds import thresholds_for
from vitals import Quality, Stream

__all__ = ["SpikeFilterOptions", "SpikeFilterStage"]

_MAD_TO_SIGMA = 1.4826


class SpikeFilterOptions(StageOptions):
    """Window (readings each side), sigmas, smallest step (metric unit), longest hold (s), thresholds."""

    spike_half_window: Annotated[int, Field(ge=1, le=1000)] = 3
    spike_sigmas: PositiveNumber = 3.0
    spike_min_step: NonNegativeNumber | None = None
    spike_max_hold_s: PositiveNumber = 30.0
    thresholds: ThresholdsOption | None = None


class SpikeFilterStage(Stage):
    """Hampel spike removal with a centred window, streaming."""

    name: ClassVar[str] = "spike_filter"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "spike_half_window": 3, "spike_sigmas": 3.0, "spike_min_step": None, "spike_max_hold_s": 30.0,
        "thresholds": None,
    }
    Options: ClassVar[type[StageOptions]] = SpikeFilterOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        self.half = max(int(self._option_float("spike_half_window")), 1)
        self.sigmas = self._option_float("spike_sigmas")
        self.min_step = self._option_float("spike_min_step", 3.0 * self.metric.resolution)
        self.max_hold_ns = int(self._option_float("spike_max_hold_s") * 1e9)
        self.thresholds = thresholds_for(self.metric.name, self.options["thresholds"])
        # Readings already sent (context for the next ones) and readings not yet judged.
        self._context = np.zeros(0)
        self._times = np.zeros(0, dtype=np.int64)
        self._values = np.zeros(0)
        self._quality = np.zeros(0, dtype=np.uint8)

    @property
    def held(self) -> int:
        """Readings held (context plus pending): at most 2 x half window plus one chunk."""
        return int(self._context.size + self._values.size)

    def process(self, stream: Stream) -> list[Stream]:
        """Return the readings whose full window is now known, spikes replaced."""
        if len(stream) == 0:
            return []
        self._times = np.concatenate((self._times, stream.times_ns))
        self._values = np.concatenate((self._values, stream.values))
        self._quality = np.concatenate((self._quality, stream.quality))
        ready = self._values.size - self.half
        return self._release(max(ready, 0))

    def flush(self, now_ns: int, *, final: bool = False) -> list[Stream]:
        """Release held readings when the newest is older than ``spike_max_hold_s`` (or ``final``)."""
        if self._values.size and (final or now_ns - int(self._times[-1]) >= self.max_hold_ns):
            return self._release(self._values.size)
        return []

    def _release(self, count: int) -> list[Stream]:
        if count == 0:
            return []
        series = np.concatenate((self._context, self._values))
        offset = self._context.size
        judged = self._judge(series, offset, count)
        values = self._values[:count].copy()
        quality = self._quality[:count].copy()
        medians = judged[1]
        spikes = judged[0]
        alert = spikes & self.thresholds.crossing(values)
        replace = spikes & ~alert
        values[replace] = medians[replace]
        quality[spikes] |= np.uint8(Quality.ARTIFACT)
        self.counters["replaced"] += int(replace.sum())
        self.counters["flagged_alert"] += int(alert.sum())
        out = irregular(self.metric.name, self.metric.unit, self._times[:count], values, quality)
        # The context keeps the original readings: a spike must not shape its neighbours' medians.
        self._context = series[: offset + count][-self.half:]
        self._times = self._times[count:]
        self._values = self._values[count:]
        self._quality = self._quality[count:]
        return [out]

    def _judge(
        self, series: npt.NDArray[np.float64], offset: int, count: int
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        half = self.half
        centre = series[offset:offset + count]
        medians = centre.copy()
        scales = np.full(count, np.inf)
        positions = np.arange(offset, offset + count)
        # A few readings (the usual 1 Hz case): plain Python beats numpy's per-call overhead.
        full = (positions >= half) & (positions + half < series.size) & (count > 4)
        if full.any():
            windows = np.lib.stride_tricks.sliding_window_view(series, 2 * half + 1)[positions[full] - half]
            median = np.median(windows, axis=1)
            medians[full] = median
            scales[full] = np.median(np.abs(windows - median[:, None]), axis=1)
        # Readings near the edges of what is known (start of the run, released by flush) are judged
        # on the readings at hand when there are enough of them.
        for i in np.flatnonzero(~full).tolist():
            position = offset + i
            window = series[max(position - half, 0):position + half + 1].tolist()
            if len(window) >= half + 2:
                median = statistics.median(window)
                medians[i] = median
                scales[i] = statistics.median([abs(v - median) for v in window])
        deviation = np.abs(centre - medians)
        spikes = (deviation > self.sigmas * _MAD_TO_SIGMA * scales) & (deviation > self.min_step)
        return spikes, medians
