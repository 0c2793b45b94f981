"""``lead_check``: lead-off (flat line) and saturation detection on raw waveform samples.

A sensor whose lead fell off, or a finger out of a pulse oximeter, reports a constant value: once a
run of identical samples lasts ``lead_off_s`` seconds, its samples from then on are flagged
``Quality.LOW_SIGNAL_QUALITY`` (counter ``lead_off_samples``, and ``lead_off_episodes`` per run).
A sample at or beyond an ADC rail (``rails: [low, high]`` in the metric's unit; by default the
catalogue's plausible range, where ``validate`` clamps) is saturated: flagged ``Quality.ARTIFACT``
and counted (``saturated_samples``). Carries its run length across chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from edge.pipeline._gaps import WaveformClock
from edge.pipeline._options import PositiveNumber, StageOptions
from edge.pipeline._stage import PipelineConfigError, Stage
from edge.pipeline._streams import replace_values
from vitals import Quality, Stream

__all__ = ["LeadCheckOptions", "LeadCheckStage"]


class LeadCheckOptions(StageOptions):
    """``lead_off_s`` (s of identical samples) and ``rails: [low, high]`` (metric unit)."""

    lead_off_s: PositiveNumber = 0.5
    rails: tuple[Annotated[float, Field(allow_inf_nan=False)], Annotated[float, Field(allow_inf_nan=False)]] | None \
        = None

    @model_validator(mode="after")
    def _ordered(self) -> LeadCheckOptions:
        if self.rails is not None and not self.rails[0] < self.rails[1]:
            raise ValueError("rails must be [low, high] with low below high")
        return self


class LeadCheckStage(Stage):
    """Flag flat-line (lead-off) and railed (saturated) waveform samples."""

    name: ClassVar[str] = "lead_check"
    OPTIONS: ClassVar[Mapping[str, Any]] = {"lead_off_s": 0.5, "rails": None}
    Options: ClassVar[type[StageOptions]] = LeadCheckOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        self.lead_off_s = self._option_float("lead_off_s")
        rails = self.options["rails"]
        if rails is None:
            self.rails = (float(self.metric.plausible[0]), float(self.metric.plausible[1]))
        elif isinstance(rails, list | tuple) and len(rails) == 2:
            self.rails = (float(rails[0]), float(rails[1]))
        else:
            raise PipelineConfigError(f"{self.metric.name}.rails: expected [low, high]")
        self._last_value: float | None = None
        self._clock = WaveformClock()
        self._run = 0  # identical samples so far, ending at the last sample seen
        self.lead_off = False

    def process(self, stream: Stream) -> list[Stream]:
        """Return the chunk with lead-off and saturated samples flagged."""
        if len(stream) == 0:
            return []
        values = stream.values
        rate = stream.rate_hz or 1.0
        limit = max(round(self.lead_off_s * rate), 2)
        if self._clock.starts_afresh(stream):
            self._last_value, self._run = None, 0  # a flat run does not go on across a gap
        # Run length of identical values at each sample, continuing the previous chunk's run.
        same = np.empty(values.size, dtype=bool)
        same[0] = self._last_value is not None and values[0] == self._last_value
        same[1:] = values[1:] == values[:-1]
        breaks = np.flatnonzero(~same)
        position = np.arange(values.size)
        last_break = np.full(values.size, -1, dtype=np.int64)
        last_break[breaks] = breaks
        last_break = np.maximum.accumulate(last_break)
        run = np.where(last_break >= 0, position - last_break + 1, position + 1 + self._run)
        flat = run >= limit
        saturated = (values <= self.rails[0]) | (values >= self.rails[1])
        starts = int((flat[1:] & ~flat[:-1]).sum()) + int(bool(flat[0]) and not self.lead_off)
        self.counters["lead_off_episodes"] += starts
        self.counters["lead_off_samples"] += int(flat.sum())
        self.counters["saturated_samples"] += int(saturated.sum())
        self._last_value = float(values[-1])
        self._run = int(run[-1])
        self.lead_off = bool(flat[-1])
        if not flat.any() and not saturated.any():
            return [stream]
        quality = stream.quality.copy()
        quality[flat] |= np.uint8(Quality.LOW_SIGNAL_QUALITY)
        quality[saturated] |= np.uint8(Quality.ARTIFACT)
        return [replace_values(stream, values, quality, stream.scale)]
