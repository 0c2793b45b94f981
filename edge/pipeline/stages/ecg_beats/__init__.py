"""``ecg_beats``: R peaks -> ``heart_rate`` and ``rr_interval`` streams, HRV and an AF indicator.

Runs :class:`edge.pipeline.ecg.RPeakDetector` on the filtered ECG. For every beat after the first
it emits ``rr_interval`` (ms, rounded to the catalogue resolution) and ``heart_rate`` (/min, from
the median of the last ``rate_beats`` RR intervals) at the beat's time; both go on to their own
chains. Both are flagged ``Quality.LOW_SIGNAL_QUALITY`` when the kurtosis signal quality index of
the previous ``sqi_window_s`` window is below ``min_sqi``. ``indicators`` holds SDNN and RMSSD over
``hrv_window_s`` and the AF irregularity over the last ``af_beats`` intervals (the catalogue has no
metric for these yet, so they stay on the gateway). The ECG itself passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from edge.pipeline._beats import BeatDeriveStage, BeatDetector
from edge.pipeline.ecg import RPeakDetector

__all__ = ["EcgBeatsStage"]


class EcgBeatsStage(BeatDeriveStage):
    """Heart rate, RR intervals, HRV and AF irregularity from the ECG."""

    name: ClassVar[str] = "ecg_beats"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "rate_beats": 8, "hrv_window_s": 300.0, "af_beats": 32, "sqi_window_s": 5.0, "min_sqi": 0.5,
    }
    rate_metric = "heart_rate"
    emit_rr = True
    sqi_kind = "kurtosis"

    def make_detector(self, fs: float) -> BeatDetector:
        """A streaming R-peak detector on already filtered ECG."""
        return RPeakDetector(fs, prefiltered=True)
