"""Deadband + swinging-door compression of slow vitals with exact alerts and heartbeats.

:class:`SwingingDoorCompressor` keeps a subset of readings, exactly as measured, such that linear
interpolation between kept readings reproduces every reading within ``2 * deadband + deviation``:

* **deadband** (exception test): a reading within ``deadband`` of the last one passed on is held
  back; when a reading passes, the last held one passes just before it (so a step is not smeared).
* **swinging door** on the readings passed on: the last kept reading is the pivot; a candidate end
  is valid while the line pivot -> candidate passes within ``deviation`` of every reading in
  between (tracked as the narrowing range of admissible slopes); when a new reading would close
  the door, the previous candidate is kept and becomes the pivot.

With ``smooth_half_window`` h > 0 (a light, centred median of 2h + 1 readings, as an oximeter's
own display averaging does) the value *kept* for an ordinary reading may be that median instead of
the raw reading, when the two differ by at most ``deviation``: a stable patient's 1 Hz readings
flicker by a step around a level, and a segment that starts on a flicker ends at the next one.
The door is still tested against every **raw** reading, so the bound above holds against what the
device measured; only the end points move onto the level. Readings wait h readings for their
median; a reading that must be kept (below) releases them at once and is never delayed, and a
median never crosses a clinical threshold or a patient's level the raw reading did not.

Some readings are always kept, at once and exactly: any reading beyond a clinical threshold and
the first one back inside (so an episode's start, course and end are exact), any reading on the
other side of one of the patient's threshold levels than the reading before it (so a rule that
compares readings with a level, held until the next reading, sees every crossing at its time),
any reading with a quality flag, and a heartbeat: when ``heartbeat_ns`` has passed since the last kept reading, the
newest reading is kept with ``Quality.HEARTBEAT`` so that silence means "no device".
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import numpy as np
import numpy.typing as npt

from edge.pipeline.thresholds import Thresholds
from vitals import Quality

__all__ = ["SwingingDoorCompressor", "reconstruct"]

_HEARTBEAT = int(Quality.HEARTBEAT)


class SwingingDoorCompressor:
    """Streaming compressor for one slow vital (values in the metric unit, times in ns)."""

    def __init__(
        self,
        *,
        deviation: float,
        deadband: float,
        heartbeat_ns: int,
        thresholds: Thresholds,
        smooth_half_window: int = 0,
    ) -> None:
        if deviation < 0 or deadband < 0 or heartbeat_ns <= 0 or smooth_half_window < 0:
            raise ValueError("deviation, deadband and the smoothing window must be >= 0, the heartbeat > 0")
        self.deviation = deviation
        self.deadband = deadband
        self.heartbeat_ns = heartbeat_ns
        self.thresholds = thresholds
        self.error_bound = 2.0 * deadband + deviation
        self._kept: list[tuple[int, float, int]] = []
        self._pivot: tuple[int, float] | None = None
        self._candidate: tuple[int, float, int] | None = None
        self._low = -math.inf  # admissible slope range (units per ns) for the segment's end
        self._high = math.inf
        self._passed: float | None = None  # last value passed by the deadband
        self._held: tuple[int, float, int] | None = None  # last value held back by the deadband
        self._held_anchor = 0.0
        self._last_kept_ns: int | None = None
        self._in_alert = False
        self._last_raw: float | None = None  # the previous reading, for level crossings
        self.smooth_half_window = smooth_half_window
        # Raw values around the readings waiting for their median, and those readings.
        self._recent: deque[float] = deque(maxlen=2 * smooth_half_window + 1)
        self._waiting: deque[tuple[int, float, int]] = deque()

    @property
    def pending(self) -> int:
        """Readings received but not yet kept or dropped (0, 1 or 2)."""
        return int(self._candidate is not None) + int(self._held is not None) + len(self._waiting)

    def push(self, time_ns: int, value: float, quality: int) -> None:
        """Feed one reading (times strictly increasing)."""
        thresholds = self.thresholds
        alert = thresholds.crosses(value)
        crossed = (bool(thresholds.levels) and self._last_raw is not None
                   and thresholds.band(value) != thresholds.band(self._last_raw))
        must_keep = alert or crossed or self._in_alert or quality != 0 or self._pivot is None
        self._in_alert = alert
        self._last_raw = value
        if must_keep:
            self._release_waiting()
            self._recent.append(value)
            self._release_held()
            self._force(time_ns, value, quality)
            return
        if not self.smooth_half_window:
            self._ordinary(time_ns, value, value, quality)
            return
        self._recent.append(value)
        self._waiting.append((time_ns, value, quality))
        if len(self._waiting) > self.smooth_half_window:
            self._ordinary(*self._smoothed(self._waiting.popleft()))

    def _smoothed(self, reading: tuple[int, float, int]) -> tuple[int, float, float, int]:
        """``(time, raw, value to keep, quality)`` for a reading leaving the smoothing window."""
        time_ns, value, quality = reading
        # The deque holds the readings from h before this one to the newest (h after, or fewer).
        anchor = float(statistics.median(self._recent))
        thresholds = self.thresholds
        if (abs(anchor - value) > self.deviation or thresholds.crosses(anchor)
                or (thresholds.levels and thresholds.band(anchor) != thresholds.band(value))):
            anchor = value
        return time_ns, value, anchor, quality

    def _release_waiting(self) -> None:
        while self._waiting:
            self._ordinary(*self._smoothed(self._waiting.popleft()))

    def _ordinary(self, time_ns: int, value: float, anchor: float, quality: int) -> None:
        """An ordinary reading (no alert, no flag): deadband, then the door."""
        if self._passed is not None and abs(value - self._passed) < self.deadband:
            self._held = (time_ns, value, quality)
            self._held_anchor = anchor
        else:
            self._release_held()
            self._door(time_ns, value, quality, anchor)
        if self._last_kept_ns is not None and time_ns - self._last_kept_ns >= self.heartbeat_ns:
            # Heartbeat: the newest reading ends the segment (any candidate is a valid end).
            self._release_held()
            assert self._candidate is not None
            held_ns, held_value, held_quality = self._candidate
            self._keep(held_ns, held_value, held_quality | _HEARTBEAT)

    def _release_held(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._door(*held, self._held_anchor)

    def _door(self, time_ns: int, value: float, quality: int, anchor: float) -> None:
        """Extend the segment to this reading, or close it at the previous one.

        ``value`` is the raw reading the line must pass within ``deviation`` of; ``anchor`` is the
        value kept if the segment ends here (the raw reading unless smoothing moved it).
        """
        self._passed = value
        assert self._pivot is not None
        pivot_ns, pivot_value = self._pivot
        elapsed = time_ns - pivot_ns
        slope = (anchor - pivot_value) / elapsed
        if self._candidate is not None and not self._low <= slope <= self._high:
            # The door closed: the previous candidate ends this segment and pivots the next.
            self._keep(*self._candidate)
            pivot_ns, pivot_value = self._pivot
            elapsed = time_ns - pivot_ns
            self._low, self._high = -math.inf, math.inf
        self._candidate = (time_ns, anchor, quality)
        self._low = max(self._low, (value - self.deviation - pivot_value) / elapsed)
        self._high = min(self._high, (value + self.deviation - pivot_value) / elapsed)

    def _force(self, time_ns: int, value: float, quality: int) -> None:
        if self._candidate is not None:
            self._keep(*self._candidate)
        self._passed = value
        self._keep(time_ns, value, quality)

    def _keep(self, time_ns: int, value: float, quality: int) -> None:
        self._kept.append((time_ns, value, quality))
        self._pivot = (time_ns, value)
        self._candidate = None
        self._low, self._high = -math.inf, math.inf
        self._last_kept_ns = time_ns

    def flush(self, now_ns: int, *, final: bool = False) -> None:
        """Keep the newest reading if a heartbeat is due at ``now_ns`` (or always when ``final``).

        Nothing is kept when no reading arrived since the last kept one: silence stays silence.
        """
        if self.pending == 0:
            return
        due = self._last_kept_ns is None or now_ns - self._last_kept_ns >= self.heartbeat_ns
        if not (final or due):
            return
        self._release_waiting()
        self._release_held()
        if self._candidate is None:  # releasing them kept the newest already (a heartbeat after a gap)
            return
        time_ns, value, quality = self._candidate
        self._candidate = None
        self._keep(time_ns, value, quality if final and not due else quality | _HEARTBEAT)

    def take(self) -> list[tuple[int, float, int]]:
        """Return and forget the readings kept since the last call: ``(time_ns, value, quality)``."""
        kept, self._kept = self._kept, []
        return kept


def reconstruct(
    kept_times_ns: npt.NDArray[np.int64], kept_values: npt.NDArray[np.float64], times_ns: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Linear interpolation of kept readings at ``times_ns`` (what the cloud can rebuild)."""
    return np.interp(times_ns.astype(np.float64), kept_times_ns.astype(np.float64), kept_values)
