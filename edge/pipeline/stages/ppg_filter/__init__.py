"""``ppg_filter``: PPG band-pass (``highpass_hz`` 0.5 to ``lowpass_hz`` 8 Hz), streaming.

Removes the DC level and slow drift (breathing, perfusion changes) and high-frequency noise, keeping
the pulse wave and its first harmonics. One SOS cascade with state carried across chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from edge.pipeline._filters import WaveformFilterStage, band_sos
from edge.pipeline._options import PositiveNumber, StageOptions

__all__ = ["PpgFilterOptions", "PpgFilterStage"]


class PpgFilterOptions(StageOptions):
    """Band edges, Hz."""

    # At most 5 Hz: the band must fit below Nyquist of any real waveform stream (checked again at the
    # first chunk, when the rate is known).
    highpass_hz: Annotated[float, Field(gt=0, le=5, allow_inf_nan=False)] = 0.5
    lowpass_hz: PositiveNumber = 8.0

    @model_validator(mode="after")
    def _band(self) -> PpgFilterOptions:
        if not self.highpass_hz < self.lowpass_hz:
            raise ValueError(f"highpass_hz ({self.highpass_hz:g}) must be below lowpass_hz ({self.lowpass_hz:g})")
        return self


class PpgFilterStage(WaveformFilterStage):
    """PPG band-pass."""

    name: ClassVar[str] = "ppg_filter"
    OPTIONS: ClassVar[Mapping[str, Any]] = {"highpass_hz": 0.5, "lowpass_hz": 8.0}
    Options: ClassVar[type[StageOptions]] = PpgFilterOptions

    def design(self, fs: float) -> npt.NDArray[np.float64]:
        """Return the band-pass cascade for ``fs`` Hz."""
        return band_sos(fs, self._option_float("highpass_hz"), self._option_float("lowpass_hz"), 2,
                        f"{self.metric.name}.ppg_filter")
