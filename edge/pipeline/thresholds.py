"""Clinical thresholds: values a doctor must see exactly, whatever the compression does."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.pipeline._stage import PipelineConfigError

__all__ = ["DEFAULT_THRESHOLDS", "Thresholds", "thresholds_for"]

DEFAULT_THRESHOLDS: dict[str, tuple[float | None, float | None]] = {
    "spo2": (90.0, None),
    "heart_rate": (40.0, 130.0),
    "pulse_rate": (40.0, 130.0),
    "bp_systolic": (90.0, 180.0),
    "bp_diastolic": (None, 110.0),
    "body_temperature": (35.0, 38.0),
    "blood_glucose": (3.9, 13.9),
    "respiratory_rate": (8.0, 25.0),
}
"""Per metric ``(low, high)`` in the catalogue unit: a value below ``low`` or above ``high`` crosses
a threshold (``None``: no limit on that side). Override per metric with the ``thresholds`` key."""


class Thresholds:
    """The alert band of one metric, and the levels whose crossings must stay exact.

    :meth:`crossing` marks values outside ``[low, high]``. ``levels`` are the patient's thresholds
    from the cloud (:mod:`vitals.patient_thresholds`): :meth:`band` tells on which side of each level
    (below, on, above) a value lies, so a change of band between two readings is a crossing.
    """

    def __init__(self, low: float | None, high: float | None, levels: Iterable[float] = ()) -> None:
        self.low = -np.inf if low is None else float(low)
        self.high = np.inf if high is None else float(high)
        self.levels = tuple(sorted({float(level) for level in levels}))

    def with_levels(self, levels: Iterable[float]) -> Thresholds:
        """The same alert band with ``levels`` in place of the current ones."""
        return Thresholds(None if self.low == -np.inf else self.low, None if self.high == np.inf else self.high,
                          levels)

    def band(self, value: float) -> tuple[int, int]:
        """Levels below ``value`` and levels at or below it: equal for two values exactly when no
        level lies between them or on one of them but not the other (no crossing, either way)."""
        return bisect.bisect_left(self.levels, value), bisect.bisect_right(self.levels, value)

    def crossing(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Return True where a value lies beyond a threshold (strictly below low or above high)."""
        return (values < self.low) | (values > self.high)

    def crosses(self, value: float) -> bool:
        """Scalar form of :meth:`crossing`."""
        return value < self.low or value > self.high


def thresholds_for(metric: str, option: Any) -> Thresholds:
    """Build the thresholds of ``metric`` from a config value (``{"low": .., "high": ..}`` or None)."""
    if option is None:
        return Thresholds(*DEFAULT_THRESHOLDS.get(metric, (None, None)))
    if not isinstance(option, Mapping) or set(option) - {"low", "high"}:
        raise PipelineConfigError(f"{metric}.thresholds: expected a mapping with 'low' and/or 'high'")
    values = []
    for key in ("low", "high"):
        value = option.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise PipelineConfigError(f"{metric}.thresholds.{key}: expected a number or null")
        values.append(None if value is None else float(value))
    return Thresholds(values[0], values[1])
