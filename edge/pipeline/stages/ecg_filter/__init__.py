"""``ecg_filter``: baseline removal, band limit and mains notch for ECG, streaming.

A Butterworth high-pass at ``highpass_hz`` (0.5 Hz) removes baseline wander, a low-pass at
``lowpass_hz`` (40 Hz) removes muscle noise, and a notch at ``mains_hz`` (50; 60 in the Americas;
``null`` to disable) removes powerline hum. One SOS cascade (run section by section with
``scipy.signal.lfilter``) whose state carries across chunks, so chunked and one-pass filtering agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from edge.pipeline._filters import WaveformFilterStage, band_sos, notch_sos
from edge.pipeline._options import PositiveNumber, StageOptions

__all__ = ["EcgFilterOptions", "EcgFilterStage"]


class EcgFilterOptions(StageOptions):
    """Band edges and mains notch, Hz; ``mains_hz: null`` turns the notch off."""

    # At most 5 Hz: the band must fit below Nyquist of any real waveform stream (checked again at the
    # first chunk, when the rate is known).
    highpass_hz: Annotated[float, Field(gt=0, le=5, allow_inf_nan=False)] = 0.5
    lowpass_hz: PositiveNumber = 40.0
    mains_hz: PositiveNumber | None = 50.0
    notch_q: PositiveNumber = 30.0

    @model_validator(mode="after")
    def _band(self) -> EcgFilterOptions:
        if not self.highpass_hz < self.lowpass_hz:
            raise ValueError(f"highpass_hz ({self.highpass_hz:g}) must be below lowpass_hz ({self.lowpass_hz:g})")
        return self


class EcgFilterStage(WaveformFilterStage):
    """ECG band-pass (baseline removal + low-pass) and mains notch."""

    name: ClassVar[str] = "ecg_filter"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "highpass_hz": 0.5, "lowpass_hz": 40.0, "mains_hz": 50.0, "notch_q": 30.0,
    }
    Options: ClassVar[type[StageOptions]] = EcgFilterOptions

    def design(self, fs: float) -> npt.NDArray[np.float64]:
        """Return the cascade for ``fs`` Hz: band-pass, then the notch when below Nyquist."""
        sections = [band_sos(fs, self._option_float("highpass_hz"), self._option_float("lowpass_hz"), 2,
                             f"{self.metric.name}.ecg_filter")]
        if self.options["mains_hz"] is not None:
            notch = notch_sos(fs, self._option_float("mains_hz"), self._option_float("notch_q"))
            if notch is not None:
                sections.append(notch)
        return np.vstack(sections)
