"""Plausibility checks on decoded batches (pure; the cloud rejects what fails them)."""

from __future__ import annotations

import numpy as np

from vitals.catalogue import CATALOGUE
from vitals.samples import Batch

__all__ = ["check_plausible"]


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
