"""Motion-burst gate for the R-peak detector: low-frequency power against its running level.

Electrode motion adds large (about 1 mV), slow (0.5-8 Hz) swings for seconds at a time. Their slopes
reach the QRS band, so the energy envelope alone takes some of them for beats. The gate measures the
1-8 Hz power of the ECG in 0.25 s blocks and flags a hump as "inside a burst" when even the quietest
block around it (1 s by default) is several times above the running (geometric mean) level of the
blocks before. The quietest block, not the mean, keeps a wide ectopic beat from looking like a burst:
motion lifts every block of a second, a beat only one or two. A couplet of wide beats (with their T
waves) can fill a second: a detector that must take couplets looks at 1.5 s. Inside a burst the detector asks for more
evidence (see :mod:`edge.pipeline.ecg`).

The flag of every block is worked out once, as soon as the blocks after it are measured, so looking
a hump up costs one index. Buffers hold a few blocks, whatever the chunk size.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from edge.pipeline._envelope import iir

__all__: list[str] = []

_LF_RATE_HZ = 30.0  # the gate runs at about this rate (block sums of the detector's reduced samples)
_LF_BAND_HZ = (1.0, 8.0)
_BLOCK_S = 0.25
WINDOW_BLOCKS = 4  # by default the quietest of these blocks (1 s) decides ...
LEAD_BLOCKS = 2  # ... ending this many blocks after the hump's own block
_BASELINE_BLOCKS = 80.0  # time constant of the running level (20 s)
_WARM_UP_BLOCKS = 8  # no flags until the level is known (2 s)
_BURST_RATIO = 3.0  # quietest block this many times above the running level: a burst
_KEEP_FLAGS = 16  # block flags kept for humps still waiting (they wait well under a second)


@lru_cache(maxsize=16)
def _lf_filter(fs: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # Transfer-function form: a low-order band well inside the band runs fine in it, and lfilter
    # costs less per call than sosfilt. The third array: the steady state for a unit step.
    b, a = sps.butter(2, [_LF_BAND_HZ[0], min(_LF_BAND_HZ[1], 0.4 * fs)], btype="bandpass", fs=fs)
    return b, a, sps.lfilter_zi(b, a)


def _sums(x: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    """Sums of consecutive groups of ``width`` samples (``x.size`` a multiple of it), each added
    up in order (strided adds: far cheaper than summing a short reshaped axis)."""
    if width == 1:
        return x
    sums = x[0::width].copy()
    for k in range(1, width):
        sums += x[k::width]
    return sums


class MotionGate:
    """Streaming burst flags for humps at indices of the detector's reduced-rate signal."""

    def __init__(self, fs_reduced: float, *, window_blocks: int = WINDOW_BLOCKS,
                 lead_blocks: int = LEAD_BLOCKS) -> None:
        self._window, self._lead = window_blocks, lead_blocks
        self._decimation = max(int(fs_reduced // _LF_RATE_HZ), 1)
        fs_lf = fs_reduced / self._decimation
        self._b, self._a, self._zi_unit = _lf_filter(fs_lf)
        self._zi: npt.NDArray[np.float64] | None = None
        self._block = max(round(_BLOCK_S * fs_lf), 1)  # low-rate samples per block
        self.span = self._decimation * self._block  # reduced samples per block
        self._carry = np.zeros(0)  # reduced samples not yet making a whole block
        alpha = 1.0 / _BASELINE_BLOCKS
        self._ema = (np.array([alpha]), np.array([1.0, alpha - 1.0]))
        self._ema_zi: npt.NDArray[np.float64] | None = None
        self._warm_up: list[npt.NDArray[np.float64]] = []  # log power of the first blocks, until the level starts
        self._blocks = 0  # whole blocks measured
        # The last blocks' log power and running level (after each block): the context the next
        # blocks' windows need. Zeros stand before the first block; no flag is raised there.
        self._log_power = np.zeros(window_blocks)
        self._level = np.zeros(window_blocks)
        # Burst flag per hump block, for blocks ``_flags_first`` .. ``_flags_first + _flags.size``.
        self._flags = np.zeros(0, dtype=bool)
        self._flags_first = 0
        self._threshold = math.log(_BURST_RATIO)

    @property
    def blocks(self) -> int:
        """Number of whole blocks measured so far."""
        return self._blocks

    @property
    def held(self) -> int:
        """Values held in buffers (bounded)."""
        return int(self._carry.size + self._log_power.size + self._level.size + self._flags.size
                   + sum(part.size for part in self._warm_up))

    @property
    def delay(self) -> int:
        """Longest wait (reduced samples) from a hump until its flag is known."""
        return (self._lead + 1) * self.span + self._decimation

    def ready_until(self) -> int:
        """First reduced index whose hump cannot be judged yet."""
        return (self._flags_first + self._flags.size) * self.span

    def push(self, reduced: npt.NDArray[np.float64]) -> None:
        """Take the next reduced-rate samples (block sums of the input)."""
        span = self.span
        x = np.concatenate((self._carry, reduced)) if self._carry.size else reduced
        whole = x.size - x.size % span
        self._carry = x[whole:].copy()
        if whole == 0:
            return
        # Whole blocks only: the filter sees the same samples in the same order whatever the chunks.
        low = _sums(x[:whole], self._decimation)
        if self._zi is None:
            self._zi = self._zi_unit * low[0]
        band, self._zi = iir(self._b, self._a, low, self._zi)
        np.square(band, out=band)
        # Tiny floor: a flat line has no power; its log must stay finite.
        power = _sums(band, self._block)
        power += 1e-12
        log_power = np.log(power, out=power)
        first = self._blocks
        self._blocks += log_power.size
        if self._ema_zi is None:
            self._warm_up.append(log_power)
            if self._blocks < _WARM_UP_BLOCKS:
                return
            # The running level starts from the mean of the first blocks, not from one block.
            log_power = np.concatenate(self._warm_up)
            first = 0
            self._warm_up = []
            start = float(log_power[:_WARM_UP_BLOCKS].mean())
            self._ema_zi = np.array([start * (1.0 - 1.0 / _BASELINE_BLOCKS)])
        level, self._ema_zi = iir(*self._ema, log_power, self._ema_zi)
        self._flag_blocks(first, log_power, level)

    def _flag_blocks(self, first: int, log_power: npt.NDArray[np.float64], level: npt.NDArray[np.float64]) -> None:
        """Flags of the hump blocks whose window ends in blocks ``first`` onwards (just measured)."""
        context = self._log_power.size
        log_power = np.concatenate((self._log_power, log_power))
        level = np.concatenate((self._level, level))
        self._log_power = log_power[-context:].copy()
        self._level = level[-context:].copy()
        # Window of the hump block ``k``: blocks ``k + LEAD - WINDOW + 1 .. k + LEAD``, against the
        # level after block ``k + LEAD - WINDOW``. ``k`` runs over ``first - LEAD`` onwards.
        n = log_power.size - context
        lo = context - self._window + 1
        quietest = log_power[lo:lo + n]
        for k in range(1, self._window):
            quietest = np.minimum(quietest, log_power[lo + k:lo + k + n])
        flags = quietest - level[lo - 1:lo - 1 + n] > self._threshold
        hump_first = first - self._lead
        warm = self._window + _WARM_UP_BLOCKS - self._lead - hump_first  # earlier blocks: no flag
        if warm > 0:
            flags[:warm] = False
        if hump_first < 0:
            flags = flags[-hump_first:]
        self._flags = np.concatenate((self._flags, flags))
        self._flags_first = first - self._lead + n - self._flags.size

    def trim(self) -> None:
        """Forget flags no waiting hump can need (call after the look-ups of a push)."""
        drop = self._flags.size - _KEEP_FLAGS
        if drop > 0:
            self._flags = self._flags[drop:].copy()
            self._flags_first += drop

    def flags(self, humps: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Burst flags for humps at reduced indices (ascending, each before :meth:`ready_until`)."""
        at = humps // self.span - self._flags_first
        if at.size and at[0] < 0:
            raise LookupError(f"the burst flag of reduced sample {int(humps[0])} is forgotten already")
        flagged: npt.NDArray[np.bool_] = self._flags[at]
        return flagged

    def flag(self, hump: int) -> bool:
        """Burst flag for one hump at a reduced index (before :meth:`ready_until`)."""
        at = hump // self.span - self._flags_first
        if at < 0:
            raise LookupError(f"the burst flag of reduced sample {hump} is forgotten already")
        return bool(self._flags[at])
