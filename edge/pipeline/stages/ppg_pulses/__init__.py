"""``ppg_pulses``: pulse peaks in the filtered PPG -> ``pulse_rate`` and ``ppg_sqi`` streams.

Runs :class:`edge.pipeline.ppg.PulseDetector`; for every pulse after the first it emits
``pulse_rate`` (/min, from the median of the last ``rate_beats`` pulse intervals) at the pulse's
time, flagged ``Quality.LOW_SIGNAL_QUALITY`` when the periodicity signal quality index of the
previous ``sqi_window_s`` window is below ``min_sqi``; and ``ppg_sqi``, that index, one reading per
window (see :mod:`edge.pipeline._indicators`). The PPG passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from edge.pipeline._beats import BeatDetector
from edge.pipeline._indicators import IndicatorStage
from edge.pipeline.ppg import PulseDetector

__all__ = ["PpgPulsesStage"]


class PpgPulsesStage(IndicatorStage):
    """Pulse rate and signal quality from the PPG."""

    name: ClassVar[str] = "ppg_pulses"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "rate_beats": 8, "hrv_window_s": 60.0, "af_beats": 32, "sqi_window_s": 5.0, "min_sqi": 0.3,
    }
    rate_metric = "pulse_rate"
    emit_rr = False
    sqi_kind = "periodicity"
    sqi_metric = "ppg_sqi"

    def make_detector(self, fs: float) -> BeatDetector:
        """A streaming pulse detector on band-passed PPG."""
        return PulseDetector(fs)
