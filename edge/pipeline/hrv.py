"""Heart-rate variability and rhythm irregularity from RR intervals (pure functions, ms in, ms out)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["AF_IRREGULARITY_THRESHOLD", "af_irregularity", "heart_rate_bpm", "rmssd_ms", "sdnn_ms"]

AF_IRREGULARITY_THRESHOLD = 0.08
"""Irregularity above which a window of RR intervals suggests atrial fibrillation (indicator only)."""


def sdnn_ms(rr_ms: npt.ArrayLike) -> float:
    """Standard deviation of RR intervals (ms); NaN for fewer than 2 intervals."""
    rr = np.asarray(rr_ms, dtype=np.float64)
    return float(np.std(rr, ddof=1)) if rr.size >= 2 else float("nan")


def rmssd_ms(rr_ms: npt.ArrayLike) -> float:
    """Root mean square of successive RR differences (ms); NaN for fewer than 2 intervals."""
    rr = np.asarray(rr_ms, dtype=np.float64)
    return float(np.sqrt(np.mean(np.diff(rr) ** 2))) if rr.size >= 2 else float("nan")


def af_irregularity(rr_ms: npt.ArrayLike) -> float:
    """Median absolute successive RR difference over the median RR (dimensionless, >= 0).

    Sinus rhythm, even with a few ectopic beats, stays well below
    :data:`AF_IRREGULARITY_THRESHOLD` (the median ignores isolated ectopics); atrial fibrillation's
    random RR sequence lies well above it. NaN for fewer than 8 intervals. A screening indicator,
    not a diagnosis.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.size < 8:
        return float("nan")
    return float(np.median(np.abs(np.diff(rr))) / np.median(rr))


def heart_rate_bpm(rr_ms: npt.ArrayLike) -> float:
    """Heart rate (/min) from the median of RR intervals (ms); NaN when empty."""
    rr = np.asarray(rr_ms, dtype=np.float64)
    return float(60_000.0 / np.median(rr)) if rr.size else float("nan")
