"""``swinging_door``: deadband + swinging-door compression of a slow vital, alerts and heartbeat kept.

Options: ``deviation`` (default the catalogue resolution) and ``deadband`` (default 0): every
reading is reproduced by linear interpolation of the kept ones within ``2 * deadband + deviation``
(one resolution step by default). ``thresholds`` (``{low, high}``,
defaults in :data:`edge.pipeline.thresholds.DEFAULT_THRESHOLDS`): readings beyond them, and the
first back inside, are kept exactly and at once. The patient's threshold levels from the cloud
(:meth:`SwingingDoorStage.set_threshold_levels`): every reading that crosses one (or lands on it)
is kept exactly and at once. ``heartbeat_s`` (300): the newest reading is
sent, flagged ``Quality.HEARTBEAT``, when nothing was sent for that long. Flagged readings are
always kept. ``smooth_half_window`` (h; default 2 for the 1 Hz monitor metrics in
:data:`SMOOTHED_METRICS`, else 0): segments may end on the centred median of 2h + 1 readings instead
of a reading that flickers a step off the level; the bound still holds against every raw reading,
alerts are never smoothed nor delayed. See :mod:`edge.pipeline.compression`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import Field

from edge.pipeline._options import NonNegativeNumber, PositiveNumber, StageOptions, ThresholdsOption
from edge.pipeline._stage import Stage
from edge.pipeline._streams import irregular
from edge.pipeline.compression import SwingingDoorCompressor
from edge.pipeline.thresholds import thresholds_for
from vitals import Stream

__all__ = ["SMOOTHED_METRICS", "SwingingDoorOptions", "SwingingDoorStage"]

SMOOTHED_METRICS = frozenset({"spo2", "heart_rate", "pulse_rate"})
"""Metrics whose segments end on a 5-reading median by default (monitors reading about every second)."""


class SwingingDoorOptions(StageOptions):
    """Deviation and deadband (metric unit), heartbeat (s), thresholds, smoothing half window (readings)."""

    deviation: NonNegativeNumber | None = None
    deadband: NonNegativeNumber | None = None
    heartbeat_s: PositiveNumber = 300.0
    thresholds: ThresholdsOption | None = None
    smooth_half_window: Annotated[int, Field(ge=0, le=1000)] | None = None


class SwingingDoorStage(Stage):
    """Keep the readings that matter; drop those a straight line already tells."""

    name: ClassVar[str] = "swinging_door"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "deviation": None, "deadband": None, "heartbeat_s": 300.0, "thresholds": None,
        "smooth_half_window": None,
    }
    Options: ClassVar[type[StageOptions]] = SwingingDoorOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        resolution = self.metric.resolution
        self.compressor = SwingingDoorCompressor(
            deviation=self._option_float("deviation", resolution),
            deadband=self._option_float("deadband", 0.0),
            heartbeat_ns=int(self._option_float("heartbeat_s") * 1e9),
            thresholds=thresholds_for(self.metric.name, self.options["thresholds"]),
            smooth_half_window=int(self._option_float(
                "smooth_half_window", 2.0 if self.metric.name in SMOOTHED_METRICS else 0.0)),
        )

    @property
    def held(self) -> int:
        """Readings held back (at most two plus the smoothing half window)."""
        return self.compressor.pending

    def set_threshold_levels(self, levels: tuple[float, ...]) -> None:
        """Keep every crossing of ``levels`` (the patient's thresholds from the cloud) exactly."""
        self.compressor.thresholds = self.compressor.thresholds.with_levels(levels)

    def process(self, stream: Stream) -> list[Stream]:
        """Feed the chunk; return the readings kept so far."""
        push = self.compressor.push
        for time_ns, value, quality in zip(
            stream.times_ns.tolist(), stream.values.tolist(), stream.quality.tolist(), strict=True
        ):
            push(time_ns, value, quality)
        self.counters["in"] += len(stream)
        return self._take()

    def flush(self, now_ns: int, *, final: bool = False) -> list[Stream]:
        """Send a heartbeat if one is due (or the held-back readings when ``final``)."""
        self.compressor.flush(now_ns, final=final)
        return self._take()

    def _take(self) -> list[Stream]:
        kept = self.compressor.take()
        if not kept:
            return []
        self.counters["kept"] += len(kept)
        times, values, quality = zip(*kept, strict=True)
        return [irregular(self.metric.name, self.metric.unit, times, values, quality)]
