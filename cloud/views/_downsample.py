"""How coarse a chart's buckets are: a "round" interval that keeps a range near a number of points (pure)."""

from __future__ import annotations

__all__ = ["BUCKET_INTERVALS_S", "bucket_interval_s"]

BUCKET_INTERVALS_S: tuple[int, ...] = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)
"""Bucket widths a chart may use, in seconds: round numbers, so bucket edges fall on the clock's marks."""


def bucket_interval_s(range_s: float, points: int) -> int:
    """The smallest interval of :data:`BUCKET_INTERVALS_S` that splits ``range_s`` seconds into at most
    ``points`` buckets (the largest interval when none does)."""
    if points < 1:
        raise ValueError(f"points must be at least 1, not {points}")
    for interval in BUCKET_INTERVALS_S:
        if range_s / interval <= points:
            return interval
    return BUCKET_INTERVALS_S[-1]
