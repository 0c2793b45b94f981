"""``waveform_counts``: put waveform values on an integer grid so the wire codes them losslessly.

Values are rounded to multiples of ``scale`` (in the metric's unit; by default the scale the device
reported, else the catalogue resolution, e.g. 1 uV for ECG) and clamped to the plausible range. The
output stream has ``scale`` set, so :func:`vitals.encode_batch` uses the lossless ``dz`` encoding
(prediction + Rice coding) for it: the cloud receives exactly these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from edge.pipeline._options import StageOptions
from edge.pipeline._stage import PipelineConfigError, Stage
from edge.pipeline._streams import replace_values
from vitals import Stream

__all__ = ["WaveformCountsOptions", "WaveformCountsStage"]


class WaveformCountsOptions(StageOptions):
    """``scale``: metric units per integer count (default: the catalogue resolution)."""

    scale: Annotated[float, Field(ge=1e-9, le=1e6, allow_inf_nan=False)] | None = None


class WaveformCountsStage(Stage):
    """Quantise a waveform to integer multiples of its scale (lossless on the wire from here on)."""

    name: ClassVar[str] = "waveform_counts"
    OPTIONS: ClassVar[Mapping[str, Any]] = {"scale": None}
    Options: ClassVar[type[StageOptions]] = WaveformCountsOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        self.scale = None if self.options["scale"] is None else self._option_float("scale")
        if self.scale is not None and not self.scale > 0.0:
            raise PipelineConfigError(f"{self.metric.name}.scale: must be positive")

    def process(self, stream: Stream) -> list[Stream]:
        """Return the chunk with values on the integer grid and ``scale`` set."""
        if len(stream) == 0:
            return []
        scale = self.scale or stream.scale or self.metric.resolution
        low, high = self.metric.plausible
        counts = np.clip(np.rint(stream.values / scale), np.ceil(low / scale), np.floor(high / scale))
        self.counters["samples"] += len(stream)
        return [replace_values(stream, counts * scale, stream.quality, scale)]
