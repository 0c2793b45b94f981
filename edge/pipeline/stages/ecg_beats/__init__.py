"""``ecg_beats``: R peaks -> ``heart_rate`` and ``rr_interval`` streams, with HRV, AF irregularity and SQI.

Runs :class:`edge.pipeline.ecg.RPeakDetector` on the filtered ECG. For every beat after the first
it emits ``rr_interval`` (ms, rounded to the catalogue resolution) and ``heart_rate`` (/min, from
the median of the last ``rate_beats`` RR intervals) at the beat's time; both go on to their own
chains. Both are flagged ``Quality.LOW_SIGNAL_QUALITY`` when the kurtosis signal quality index of
the previous ``sqi_window_s`` window is below ``min_sqi``. It also sends, as catalogue metrics:
``ecg_sqi`` (that index, one reading per window), and once per ``indicator_interval_s``
``hrv_sdnn`` and ``hrv_rmssd`` over the last ``hrv_window_s`` and ``af_irregularity`` over the last
``af_beats`` intervals (see :mod:`edge.pipeline._indicators`). The ECG itself passes through
unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from edge.pipeline._beats import BeatDetector
from edge.pipeline._indicators import IndicatorStage, RhythmIndicatorOptions
from edge.pipeline._options import StageOptions
from edge.pipeline.ecg import RPeakDetector

__all__ = ["EcgBeatsStage"]


class EcgBeatsStage(IndicatorStage):
    """Heart rate, RR intervals, HRV, AF irregularity and signal quality from the ECG."""

    name: ClassVar[str] = "ecg_beats"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "rate_beats": 8, "hrv_window_s": 300.0, "af_beats": 32, "sqi_window_s": 5.0, "min_sqi": 0.5,
        "indicator_interval_s": 60.0,
    }
    Options: ClassVar[type[StageOptions]] = RhythmIndicatorOptions
    rate_metric = "heart_rate"
    emit_rr = True
    sqi_kind = "kurtosis"
    sqi_metric = "ecg_sqi"

    def make_detector(self, fs: float) -> BeatDetector:
        """A streaming R-peak detector on already filtered ECG."""
        return RPeakDetector(fs, prefiltered=True)
