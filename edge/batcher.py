"""Collects a device's outgoing streams between two sends and turns them into batches (pure)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from vitals.codec import MAX_STREAMS, MAX_VALUES_PER_STREAM
from vitals.samples import Stream

__all__ = ["StreamCollector"]


class StreamCollector:
    """Holds one device's streams until the next batch; irregular streams of a metric are merged.

    Merging sorts by time and keeps the first of equal timestamps (a duplicated reading), since
    the wire requires strictly increasing times within a stream. ``duplicates`` counts those.
    """

    def __init__(self, max_values: int = MAX_VALUES_PER_STREAM) -> None:
        self._irregular: dict[str, list[Stream]] = defaultdict(list)
        self._regular: list[Stream] = []
        self._values = 0
        self.max_values = max_values
        self.duplicates = 0

    @property
    def value_count(self) -> int:
        """Values held right now."""
        return self._values

    def add(self, stream: Stream) -> None:
        """Hold ``stream`` for the next batch."""
        if len(stream) == 0:
            return
        if stream.rate_hz is not None:
            self._regular.append(stream)
        else:
            self._irregular[stream.metric].append(stream)
        self._values += len(stream)

    def take(self) -> list[list[Stream]]:
        """Return the held streams grouped into batches (each within the wire limits) and reset."""
        streams: list[Stream] = []
        for metric, parts in sorted(self._irregular.items()):
            streams.extend(self._merge(metric, parts))
        for stream in self._regular:
            streams.extend(_split(stream, self.max_values))
        self._irregular.clear()
        self._regular = []
        self._values = 0
        return [streams[i:i + MAX_STREAMS] for i in range(0, len(streams), MAX_STREAMS)]

    def _merge(self, metric: str, parts: list[Stream]) -> list[Stream]:
        times = np.concatenate([p.times_ns for p in parts])
        values = np.concatenate([p.values for p in parts])
        quality = np.concatenate([p.quality for p in parts])
        order = np.argsort(times, kind="stable")
        times, values, quality = times[order], values[order], quality[order]
        keep = np.ones(len(times), dtype=bool)
        keep[1:] = times[1:] != times[:-1]
        self.duplicates += int(len(keep) - keep.sum())
        merged = Stream(metric, parts[0].unit, times[keep], values[keep], quality[keep])
        return _split(merged, self.max_values)


def _split(stream: Stream, max_values: int) -> list[Stream]:
    if len(stream) <= max_values:
        return [stream]
    return [
        Stream(stream.metric, stream.unit, stream.times_ns[i:i + max_values], stream.values[i:i + max_values],
               stream.quality[i:i + max_values], rate_hz=stream.rate_hz, scale=stream.scale)
        for i in range(0, len(stream), max_values)
    ]
