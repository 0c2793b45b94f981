"""``validate``: plausible range and rate of change from the catalogue.

Readings (numeric metrics) outside the plausible range, not finite, or not later than the previous
reading are rejected and counted by reason (``rejected.below_plausible`` ...): the cloud refuses a
whole batch that holds an impossible value. A reading that changed faster than the catalogue's
``max_rate`` is kept and flagged ``Quality.RATE_OF_CHANGE``. Waveform samples cannot be dropped
without breaking the sample clock, so out-of-range samples are clamped to the range and flagged
``Quality.ARTIFACT`` (``clamped``), non-finite ones set to 0 and flagged (``not_finite``). A waveform
chunk that does not follow on from the one before (its first time more than two sample periods from
where the previous chunk's clock leads, as when a device reconnects) has its first sample flagged
``Quality.GAP`` (``gaps``), so the stages after it, and the cloud, know the samples before it are missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from edge.pipeline._gaps import WaveformClock
from edge.pipeline._options import PositiveNumber, StageOptions
from edge.pipeline._stage import Stage
from edge.pipeline._streams import replace_values
from vitals import MetricKind, Quality, Stream

__all__ = ["ValidateOptions", "ValidateStage"]


class ValidateOptions(StageOptions):
    """``max_rate``: fastest plausible change, metric unit per second (default: the catalogue's)."""

    max_rate: PositiveNumber | None = None


class ValidateStage(Stage):
    """Reject impossible readings, flag implausibly fast changes (see the module docstring)."""

    name: ClassVar[str] = "validate"
    OPTIONS: ClassVar[Mapping[str, Any]] = {"max_rate": None}
    Options: ClassVar[type[StageOptions]] = ValidateOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        rate = self.options["max_rate"]
        self.max_rate = self.metric.max_rate if rate is None else self._option_float("max_rate")
        self._last_time: int | None = None
        self._last_value: float | None = None
        self._clock = WaveformClock()

    def process(self, stream: Stream) -> list[Stream]:
        """Return the chunk without impossible readings (numeric) or with them clamped (waveform)."""
        if len(stream) == 0:
            return []
        if self.metric.kind is MetricKind.WAVEFORM:
            return [self._waveform(stream)]
        return self._numeric(stream)

    def _waveform(self, stream: Stream) -> Stream:
        low, high = self.metric.plausible
        values = stream.values
        finite = np.isfinite(values)
        outside = finite & ((values < low) | (values > high))
        gap = self._clock.starts_afresh(stream)
        if gap:
            self.counters["gaps"] += 1
        if finite.all() and not outside.any():
            if not gap or stream.quality[0] & Quality.GAP:
                return stream
            quality = stream.quality.copy()
            quality[0] |= np.uint8(Quality.GAP)
            return replace_values(stream, values, quality, stream.scale)
        quality = stream.quality.copy()
        if gap:
            quality[0] |= np.uint8(Quality.GAP)
        quality[~finite | outside] |= np.uint8(Quality.ARTIFACT)
        if stream.scale is not None:
            # Keep clamped values exact multiples of the scale (the wire sends integers).
            low = np.ceil(low / stream.scale) * stream.scale
            high = np.floor(high / stream.scale) * stream.scale
        cleaned = np.clip(np.where(finite, values, 0.0), low, high)
        self.counters["not_finite"] += int((~finite).sum())
        self.counters["clamped"] += int(outside.sum())
        return replace_values(stream, cleaned, quality, stream.scale)

    def _numeric(self, stream: Stream) -> list[Stream]:
        low, high = self.metric.plausible
        values, times = stream.values, stream.times_ns
        finite = np.isfinite(values)
        below = finite & (values < low)
        above = finite & (values > high)
        previous = np.iinfo(np.int64).min if self._last_time is None else self._last_time
        latest_before = np.maximum.accumulate(np.concatenate(([previous], times)))[:-1]
        stale = finite & ~below & ~above & (times <= latest_before)
        keep = finite & ~below & ~above & ~stale
        for reason, mask in (("not_finite", ~finite), ("below_plausible", below),
                             ("above_plausible", above), ("time_not_increasing", stale)):
            if mask.any():
                self.counters[f"rejected.{reason}"] += int(mask.sum())
        if not keep.any():
            return []
        kept_values = values[keep]
        kept_times = times[keep]
        quality = stream.quality[keep].copy()
        if self.max_rate is not None:
            prior_values = np.concatenate(([np.nan if self._last_value is None else self._last_value],
                                           kept_values[:-1]))
            prior_times = np.concatenate(([kept_times[0] if self._last_time is None else self._last_time],
                                          kept_times[:-1]))
            elapsed_s = np.maximum(kept_times - prior_times, 1) / 1e9
            with np.errstate(invalid="ignore"):
                fast = np.abs(kept_values - prior_values) / elapsed_s > self.max_rate
            fast &= ~np.isnan(prior_values)
            quality[fast] |= np.uint8(Quality.RATE_OF_CHANGE)
            self.counters["flagged.rate_of_change"] += int(fast.sum())
        self._last_time = int(kept_times[-1])
        self._last_value = float(kept_values[-1])
        return [Stream(stream.metric, stream.unit, kept_times, kept_values, quality, scale=None)]
