"""Helpers to build streams from parts of other streams (internal)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vitals import Stream

__all__: list[str] = []


def replace_values(
    stream: Stream,
    values: npt.NDArray[np.float64],
    quality: npt.NDArray[np.uint8] | None = None,
    scale: float | None = None,
) -> Stream:
    """Same times (and rate) as ``stream`` with new values, quality and scale."""
    return Stream(
        stream.metric,
        stream.unit,
        stream.times_ns,
        values,
        stream.quality if quality is None else quality,
        rate_hz=stream.rate_hz,
        scale=scale,
    )


def irregular(
    metric: str,
    unit: str,
    times_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    quality: npt.ArrayLike,
) -> Stream:
    """An irregular stream (no rate, no scale) from parallel arrays or lists."""
    return Stream(metric, unit, np.asarray(times_ns, dtype=np.int64), np.asarray(values, dtype=np.float64),
                  np.asarray(quality, dtype=np.uint8))
