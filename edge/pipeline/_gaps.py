"""Gaps in a waveform stream (internal): where a chunk does not follow on from the one before.

A device that loses its link and reconnects starts sending again from a later time: the chunk's first
timestamp jumps past the sample that should have come next. Filters and beat detectors carry state
from sample to sample, so across such a jump they would ring, and a beat detector would measure an
RR interval over the missing stretch. A stage that keeps waveform state asks a
:class:`WaveformClock` whether a chunk follows on and starts afresh when it does not.
"""

from __future__ import annotations

from vitals import Quality, Stream

__all__: list[str] = []

# Sample periods a chunk's start may stray from the expected time (device clocks jitter a little
# between batches); beyond this either way, the chunk starts a new stretch.
_TOLERANCE_PERIODS = 2.0


class WaveformClock:
    """Follows one regular stream's sample clock from chunk to chunk."""

    def __init__(self) -> None:
        self._next_ns: float | None = None
        self._rate: float | None = None

    def starts_afresh(self, stream: Stream) -> bool:
        """Whether ``stream`` (a regular chunk) does not follow on from the previous one: its first
        time is more than two sample periods from the expected time (either way), its rate changed,
        or an earlier stage marked its first sample ``Quality.GAP``. The first chunk ever is not a
        gap. Call once per chunk, in order."""
        rate = stream.rate_hz
        if rate is None or len(stream) == 0:
            return False
        first = int(stream.times_ns[0])
        period = 1e9 / rate
        expected, self._next_ns = self._next_ns, first + len(stream) * period
        previous_rate, self._rate = self._rate, rate
        if expected is None:
            return False
        marked = bool(int(stream.quality[0]) & int(Quality.GAP))
        return marked or previous_rate != rate or abs(first - expected) > _TOLERANCE_PERIODS * period
