"""Plausibility checks on decoded batches (pure; the cloud rejects what fails them)."""

from __future__ import annotations

import numpy as np

from vitals.catalogue import CATALOGUE
from vitals.samples import Batch

__all__ = ["check_density", "check_plausible"]


def check_plausible(batch: Batch, *, now_ns: int, max_future_ns: int = 5 * 60 * 10**9) -> list[str]:
    """Return the reasons ``batch`` holds impossible data (empty when it is plausible).

    A value outside its metric's plausible range, or a time later than ``now_ns + max_future_ns``
    (the gateway clock may run a little ahead), makes the whole batch implausible: the edge is
    expected to hold such readings back, so they point to a broken device or gateway.
    """
    reasons: list[str] = []
    for index, stream in enumerate(batch.streams):
        metric = CATALOGUE[stream.metric]
        low, high = metric.plausible
        outside = (stream.values < low) | (stream.values > high)
        if np.any(outside):
            first = float(stream.values[np.argmax(outside)])
            reasons.append(
                f"stream {index} ({stream.metric}): {int(outside.sum())} value(s) outside the plausible "
                f"range {low:g}..{high:g} {metric.unit}, first {first:g}"
            )
        if len(stream) and int(stream.times_ns[-1]) > now_ns + max_future_ns:
            reasons.append(f"stream {index} ({stream.metric}): timestamps lie in the future")
    return reasons


def check_density(batch: Batch, *, slack: float = 1.01) -> list[str]:
    """Return the reasons ``batch`` holds streams denser than their metric allows (empty when none).

    A stream of ``n`` values spanning ``t`` seconds may carry at most ``max_hz * t + 1`` of them
    (times ``slack``): more means a device claims a sampling rate no device has, and one message
    would turn into far more points than it should.
    """
    reasons: list[str] = []
    for index, stream in enumerate(batch.streams):
        count = len(stream)
        if count < 2:
            continue
        metric = CATALOGUE[stream.metric]
        span_s = float(stream.times_ns[-1] - stream.times_ns[0]) / 1e9
        allowed = metric.max_hz * span_s * slack + 1
        if count > allowed:
            reasons.append(
                f"stream {index} ({stream.metric}): {count} values in {span_s:.3g} s is "
                f"{(count - 1) / span_s if span_s > 0 else float('inf'):.4g}/s, over the {metric.max_hz:g}/s "
                f"any {stream.metric} device reports"
            )
    return reasons
