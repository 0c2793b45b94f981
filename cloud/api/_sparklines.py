"""The worklist's sparklines, kept between calls: a week of 2-hour means changes only at its recent end.

Reading a week of 1 Hz data for every patient on every worklist call would cost seconds; instead a
bucket that has ended (and ``settle_s`` more, for data still in flight) is kept, and the next call
asks InfluxDB only for the buckets after it. A patient's kept buckets are read afresh once they are
older than ``max_age_s`` (so data that arrives late, after a gateway's outage, shows within that
time), but never more than ``refresh_per_call`` patients in one call, so that one call does not pay
for the whole list. Nothing here does I/O: the router asks :meth:`SparklineCache.plan` what to read and
hands the answer to :meth:`SparklineCache.store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["SparklineCache"]

Points = dict[str, list[tuple[int, float]]]


@dataclass
class _Entry:
    read_at_ns: int  # when its buckets were last read from the start of the window
    complete_until_ns: int  # every bucket starting before this has ended and is kept
    points: Points = field(default_factory=dict)


class SparklineCache:
    """Ended buckets per patient (see the module docstring); ``bucket_ns`` is the bucket width."""

    def __init__(self, bucket_ns: int, *, settle_s: float = 300.0, max_age_s: float = 3600.0,
                 refresh_per_call: int = 5) -> None:
        self.bucket_ns = bucket_ns
        self.settle_ns = int(settle_s * 1e9)
        self.max_age_ns = int(max_age_s * 1e9)
        self.refresh_per_call = refresh_per_call
        self._entries: dict[str, _Entry] = {}

    def complete_until(self, now_ns: int) -> int:
        """The start of the first bucket that may still change at ``now_ns``."""
        settled = now_ns - self.settle_ns
        return settled - settled % self.bucket_ns

    def plan(self, patients: Sequence[str], start_ns: int, now_ns: int) -> dict[int, list[str]]:
        """What to read: ``from_ns -> patients`` whose buckets from ``from_ns`` to now must be read.

        Patients never read, or whose kept buckets do not reach into the window, start at
        ``start_ns``; so do the ``refresh_per_call`` stalest of those past ``max_age_s``. The others
        start where their kept buckets end.
        """
        reads: dict[int, list[str]] = {}
        stale = sorted((entry.read_at_ns, patient) for patient in patients
                       if (entry := self._entries.get(patient)) is not None
                       and now_ns - entry.read_at_ns > self.max_age_ns)
        refresh = {patient for _at, patient in stale[:self.refresh_per_call]}
        for patient in patients:
            entry = self._entries.get(patient)
            if entry is None or patient in refresh or entry.complete_until_ns <= start_ns:
                reads.setdefault(start_ns, []).append(patient)
            else:
                reads.setdefault(max(start_ns, entry.complete_until_ns), []).append(patient)
        return reads

    def store(self, read: Mapping[int, Mapping[str, Points]], patients_read: Mapping[int, Sequence[str]],
              start_ns: int, now_ns: int) -> dict[str, Points]:
        """Keep what was read (``from_ns -> patient -> metric -> points``, for ``patients_read``) and return
        every patient's sparklines over the window, oldest bucket first."""
        complete = self.complete_until(now_ns)
        out: dict[str, Points] = {}
        for from_ns, patients in patients_read.items():
            for patient in patients:
                fresh = read.get(from_ns, {}).get(patient, {})
                entry = self._entries.get(patient)
                if entry is None or from_ns <= start_ns:
                    merged: Points = {}
                    read_at = now_ns
                else:
                    merged = {metric: [p for p in points if start_ns <= p[0] < from_ns]
                              for metric, points in entry.points.items()}
                    read_at = entry.read_at_ns
                for metric, points in fresh.items():
                    merged.setdefault(metric, []).extend(p for p in points if p[0] >= from_ns)
                merged = {metric: points for metric, points in merged.items() if points}
                self._entries[patient] = _Entry(read_at, complete, {
                    metric: [p for p in points if p[0] < complete] for metric, points in merged.items()})
                out[patient] = merged
        return out
