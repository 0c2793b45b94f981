"""Motion-burst gate for the R-peak detector: low-frequency power against its running level.

Electrode motion adds large (about 1 mV), slow (0.5-8 Hz) swings for seconds at a time. Their slopes
reach the QRS band, so the energy envelope alone takes some of them for beats. The gate measures the
1-8 Hz power of the ECG in 0.25 s blocks and flags a hump as "inside a burst" when even the quietest
block around it is several times above the running (geometric mean) level of the blocks before. The
quietest block, not the mean, keeps a single wide ectopic beat from looking like a burst: motion
lifts every block of a second, a beat only one or two. Inside a burst the detector asks for more
evidence (see :mod:`edge.pipeline.ecg`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

__all__: list[str] = []

_LF_RATE_HZ = 30.0  # the gate runs at about this rate (block sums of the detector's reduced samples)
_LF_BAND_HZ = (1.0, 8.0)
_BLOCK_S = 0.25
_WINDOW_BLOCKS = 4  # the quietest of these blocks (1 s) decides ...
_LEAD_BLOCKS = 2  # ... ending this many blocks after the hump's own block
_BASELINE_BLOCKS = 80.0  # time constant of the running level (20 s)
_WARM_UP_BLOCKS = 8  # no flags until the level is known (2 s)
_BURST_RATIO = 3.0  # quietest block this many times above the running level: a burst


@lru_cache(maxsize=16)
def _lf_filter(fs: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # Transfer-function form: a low-order band well inside the band runs fine in it, and lfilter
    # costs less per call than sosfilt. The third array: the steady state for a unit step.
    b, a = sps.butter(2, [_LF_BAND_HZ[0], min(_LF_BAND_HZ[1], 0.4 * fs)], btype="bandpass", fs=fs)
    return b, a, sps.lfilter_zi(b, a)


class MotionGate:
    """Streaming burst flags for humps at indices of the detector's reduced-rate signal."""

    def __init__(self, fs_reduced: float) -> None:
        self._decimation = max(int(fs_reduced // _LF_RATE_HZ), 1)
        fs_lf = fs_reduced / self._decimation
        self._b, self._a, self._zi_unit = _lf_filter(fs_lf)
        self._zi: npt.NDArray[np.float64] | None = None
        self._block = max(round(_BLOCK_S * fs_lf), 1)  # low-rate samples per block
        self.span = self._decimation * self._block  # reduced samples per block
        self._carry = np.zeros(0)  # reduced samples not yet making a whole low-rate sample
        self._power_carry = np.zeros(0)  # squared low-rate samples not yet making a whole block
        alpha = 1.0 / _BASELINE_BLOCKS
        self._ema = (np.array([alpha]), np.array([1.0, alpha - 1.0]))
        self._ema_zi: npt.NDArray[np.float64] | None = None
        # Per block (absolute index ``_first`` onwards): log power, and the running level after it.
        self._first = 0
        self._log_power = np.zeros(0)
        self._level = np.zeros(0)
        self._threshold = math.log(_BURST_RATIO)
        self._keep = _WINDOW_BLOCKS + _LEAD_BLOCKS + 8  # blocks kept for humps still waiting (bounded)

    @property
    def blocks(self) -> int:
        """Number of whole blocks measured so far (with their running level)."""
        return self._first + self._level.size

    @property
    def held(self) -> int:
        """Values held in buffers (bounded)."""
        return int(self._carry.size + self._power_carry.size + 2 * self._log_power.size)

    @property
    def delay(self) -> int:
        """Longest wait (reduced samples) from a hump until its flag is known."""
        return (_LEAD_BLOCKS + 1) * self.span + self._decimation

    def ready_until(self) -> int:
        """First reduced index whose hump cannot be judged yet."""
        return (self.blocks - _LEAD_BLOCKS) * self.span

    def push(self, reduced: npt.NDArray[np.float64]) -> None:
        """Take the next reduced-rate samples (block sums of the input)."""
        d = self._decimation
        x = np.concatenate((self._carry, reduced)) if self._carry.size else reduced
        whole = x.size - x.size % d
        self._carry = x[whole:].copy()
        if whole == 0:
            return
        low = x[0:whole:d].copy()
        for k in range(1, d):  # strided sums: much cheaper than summing a reshaped axis of a few
            low += x[k:whole:d]
        if self._zi is None:
            self._zi = self._zi_unit * low[0]
        band, self._zi = sps.lfilter(self._b, self._a, low, zi=self._zi)
        power = np.concatenate((self._power_carry, np.square(band)))
        b = self._block
        whole = power.size - power.size % b
        self._power_carry = power[whole:].copy()
        if whole == 0:
            return
        # Tiny floor: a flat line has no power; its log must stay finite.
        block_power = power[0:whole:b] + 1e-12
        for k in range(1, b):
            block_power += power[k:whole:b]
        log_power = np.log(block_power)
        self._log_power = np.concatenate((self._log_power, log_power))
        if self._ema_zi is None:
            if self._log_power.size < _WARM_UP_BLOCKS:
                return
            # The running level starts from the mean of the first blocks, not from one block.
            log_power = self._log_power
            start = float(log_power[:_WARM_UP_BLOCKS].mean())
            self._ema_zi = np.array([start * (1.0 - 1.0 / _BASELINE_BLOCKS)])
        level, self._ema_zi = sps.lfilter(*self._ema, log_power, zi=self._ema_zi)
        self._level = np.concatenate((self._level, level))

    def trim(self) -> None:
        """Forget blocks no waiting hump can need (call after :meth:`flags` of a push)."""
        drop = self._level.size - self._keep
        if drop > 0:
            self._log_power = self._log_power[drop:].copy()
            self._level = self._level[drop:].copy()
            self._first += drop

    def flags(self, humps: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Burst flags for humps at reduced indices (each before :meth:`ready_until`)."""
        if humps.size == 0 or self._level.size < _WINDOW_BLOCKS:
            return np.zeros(humps.size, dtype=bool)
        absolute = humps // self.span + _LEAD_BLOCKS
        last = absolute - self._first
        # The window of blocks ending at ``last``, and the running level just before it.
        rows = np.maximum(last - _WINDOW_BLOCKS + 1, 0)
        log_power = self._log_power
        quietest = log_power[rows]
        for k in range(1, _WINDOW_BLOCKS):
            quietest = np.minimum(quietest, log_power[rows + k])
        level = self._level[np.maximum(rows - 1, 0)]
        warm = absolute >= _WINDOW_BLOCKS + _WARM_UP_BLOCKS
        flagged: npt.NDArray[np.bool_] = (quietest - level > self._threshold) & warm
        return flagged
