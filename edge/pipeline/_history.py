"""Small bounded buffers for streaming signal processing (absolute sample indices, fixed memory)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__: list[str] = []


class SampleHistory:
    """The most recent samples of a signal, addressed by absolute sample index.

    ``extend`` appends a chunk; ``trim(keep_from)`` forgets samples before ``keep_from``. Memory is
    bounded by whatever the owner keeps, never by the length of the run.
    """

    def __init__(self) -> None:
        self.start = 0  # absolute index of values[0]
        self.values: npt.NDArray[np.float64] = np.zeros(0)

    @property
    def end(self) -> int:
        """Absolute index one past the newest sample."""
        return self.start + self.values.size

    def extend(self, chunk: npt.NDArray[np.float64]) -> None:
        """Append ``chunk`` (the samples right after :attr:`end`)."""
        # Always a copy: the caller keeps its array.
        self.values = np.concatenate((self.values, chunk))

    def window(self, first: int, stop: int) -> npt.NDArray[np.float64]:
        """Return the samples with absolute indices ``first <= i < stop`` that are still held."""
        lo = max(first - self.start, 0)
        hi = max(min(stop - self.start, self.values.size), lo)
        return self.values[lo:hi]

    def trim(self, keep_from: int) -> None:
        """Forget samples before absolute index ``keep_from``."""
        drop = min(max(keep_from - self.start, 0), self.values.size)
        if drop:
            self.values = self.values[drop:].copy()
            self.start += drop


class LocalMaxima:
    """Streaming local maxima: humps that are the highest hump within +-``radius`` samples.

    A hump is a sample above its left neighbour and not below its right one (plateaus report their
    first sample); it is kept when no other hump within +-``radius`` samples is higher (ties go to
    the earlier one). A sample is judged once ``radius`` + 1 later samples are known, so chunked
    and one-pass input give the same indices. Fed signals must be non-negative.
    """

    _NEIGHBOURS = 8  # humps compared on each side; plenty for smooth envelopes

    def __init__(self, radius: int) -> None:
        self.radius = max(int(radius), 1)
        self._history = SampleHistory()
        # Pad the start with zeros so the first samples can be judged like any other.
        self._history.start = -2 * self.radius - 2
        self._history.values = np.zeros(2 * self.radius + 2)
        self._next = 0  # first absolute index not yet judged

    def push(
        self, chunk: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Append ``chunk``; return absolute indices (ascending) and values of newly confirmed maxima."""
        history = self._history
        history.extend(chunk)
        stop = history.end - self.radius - 1  # judge indices < stop
        if stop <= self._next:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        values = history.values
        # Humps in [next - radius, stop + radius): everything that can dominate a judged sample.
        lo = self._next - self.radius - history.start
        hi = stop + self.radius - history.start
        middle = values[lo:hi]
        humps = np.flatnonzero((middle > values[lo - 1:hi - 1]) & (middle >= values[lo + 1:hi + 1]))
        heights = middle[humps]
        keep = heights > 0.0
        for shift in range(1, self._NEIGHBOURS + 1):
            if shift >= humps.size:
                break
            near = humps[shift:] - humps[:-shift] <= self.radius
            # A later hump within reach that is higher, or an earlier one at least as high, wins.
            keep[:-shift] &= ~(near & (heights[shift:] > heights[:-shift]))
            keep[shift:] &= ~(near & (heights[:-shift] >= heights[shift:]))
        absolute = humps + lo + history.start
        judged = keep & (absolute >= self._next) & (absolute < stop)
        found = absolute[judged].astype(np.int64)
        self._next = stop
        history.trim(stop - 2 * self.radius - 2)
        return found, heights[judged].copy()

    @property
    def held(self) -> int:
        """Number of samples held (bounded by about 2 * radius plus one chunk)."""
        return int(self._history.values.size)
