"""Heart and breathing rhythms as functions of time: rates, phases and beat times.

A rate (beats or breaths per minute) is a baseline plus episode offsets plus a sum of random-phase
sinusoids (the variability). Its integral, the phase in cycles, is known in closed form, so a beat
falls wherever the phase crosses an integer (integral pulse frequency modulation). Everything is a
pure function of absolute time: any window can be generated on its own and agrees with any other.

Heart-rate variability follows ECGSYN (McSharry et al., 2003): power in a Mayer band around 0.1 Hz
(LF) and a respiratory band (HF) at the breathing frequency, both Gaussian with 0.01 Hz spread, in a
chosen LF/HF power ratio. Atrial fibrillation replaces sinus beats by irregular ones (log-normal
intervals) over its episodes; premature ventricular beats come early and leave a compensatory pause
(the sinus node keeps its schedule; the blocked sinus beat is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.signals._keyed import keyed_uniform, stream_key
from simulators.signals.events import Episode

__all__ = ["Beats", "RateModel", "RhythmModel", "Variability"]

FloatArray = npt.NDArray[np.float64]

_GRID_S = 0.1  # phase grid for beat search; shorter than any sinus RR interval (< 600 /min)
_AF_CV = 0.24  # spread of log RR in AF: coefficient of variation ~ 0.24, well above sinus
_AF_MIN_RR_S = 0.28
_PVC_KEY = stream_key("pvc")


@dataclass(frozen=True)
class Variability:
    """A sum of cosines ``sum(a_k cos(2 pi f_k t + phi_k))`` (same unit as ``amplitudes``)."""

    frequencies_hz: FloatArray
    amplitudes: FloatArray
    phases: FloatArray

    @classmethod
    def none(cls) -> Variability:
        """No variability at all."""
        empty = np.zeros(0, dtype=np.float64)
        return cls(empty, empty, empty)

    @classmethod
    def heart_rate(
        cls,
        rng: np.random.Generator,
        *,
        std_per_min: float,
        lf_hf_ratio: float,
        hf_hz: float,
        lf_hz: float = 0.1,
        band_spread_hz: float = 0.01,
        per_band: int = 16,
    ) -> Variability:
        """Heart-rate variability with total standard deviation ``std_per_min`` (bpm).

        LF power / HF power equals ``lf_hf_ratio``; HF sits at the breathing frequency ``hf_hz``.
        """
        ratio = max(lf_hf_ratio, 1e-6)
        var_total = std_per_min**2
        var_lf = var_total * ratio / (1.0 + ratio)
        var_hf = var_total - var_lf
        freqs = np.concatenate([
            rng.normal(lf_hz, band_spread_hz, per_band),
            rng.normal(hf_hz, band_spread_hz, per_band),
        ])
        freqs = np.maximum(np.abs(freqs), 0.005)
        # K cosines of amplitude a have variance K a^2 / 2.
        amps = np.concatenate([
            np.full(per_band, np.sqrt(2.0 * var_lf / per_band)),
            np.full(per_band, np.sqrt(2.0 * var_hf / per_band)),
        ])
        phases = rng.uniform(0.0, 2.0 * np.pi, 2 * per_band)
        return cls(freqs, amps, phases)

    @classmethod
    def slow_drift(cls, rng: np.random.Generator, *, std: float, count: int = 4) -> Variability:
        """Slow wandering (periods of 30 s to 10 min) with standard deviation ``std``."""
        freqs = rng.uniform(1.0 / 600.0, 1.0 / 30.0, count)
        amps = np.full(count, np.sqrt(2.0 / count) * std)
        return cls(freqs, amps, rng.uniform(0.0, 2.0 * np.pi, count))

    def value(self, t_s: FloatArray) -> FloatArray:
        """Value at times ``t_s`` (seconds)."""
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros(t.shape, dtype=np.float64)
        for f, a, p in zip(self.frequencies_hz, self.amplitudes, self.phases, strict=True):
            out += a * np.cos(2.0 * np.pi * f * t + p)
        return out

    def integral(self, t_s: FloatArray) -> FloatArray:
        """Integral from 0 to ``t_s`` (unit times seconds)."""
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros(t.shape, dtype=np.float64)
        for f, a, p in zip(self.frequencies_hz, self.amplitudes, self.phases, strict=True):
            w = 2.0 * np.pi * f
            out += (a / w) * (np.sin(w * t + p) - np.sin(p))
        return out


@dataclass(frozen=True)
class RateModel:
    """A rate in cycles per minute: ``base + sum(episodes) + variability`` at time t (seconds).

    ``phase_offset`` (cycles) places the first cycle; :meth:`phase` is the cycle count since 0.
    """

    base_per_min: float
    episodes: tuple[Episode, ...] = ()
    variability: Variability = field(default_factory=Variability.none)
    phase_offset: float = 0.0

    def rate(self, t_s: FloatArray) -> FloatArray:
        """Rate at ``t_s``, cycles per minute."""
        t = np.asarray(t_s, dtype=np.float64)
        out = np.full(t.shape, self.base_per_min, dtype=np.float64)
        for episode in self.episodes:
            out += episode.value(t)
        out += self.variability.value(t)
        return out

    def phase(self, t_s: FloatArray) -> FloatArray:
        """Cycles completed at ``t_s`` (plus ``phase_offset``)."""
        t = np.asarray(t_s, dtype=np.float64)
        total = self.base_per_min * t
        for episode in self.episodes:
            total = total + episode.integral(t)
        total = total + self.variability.integral(t)
        return self.phase_offset + total / 60.0

    def crossings(self, t_lo: float, t_hi: float) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Times (s) in ``[t_lo, t_hi)`` where the phase crosses an integer, and those integers."""
        k0 = int(np.floor(t_lo / _GRID_S)) - 1
        k1 = int(np.ceil(t_hi / _GRID_S)) + 1
        grid = np.arange(k0, k1 + 1, dtype=np.float64) * _GRID_S  # absolute grid: chunk-independent
        whole = np.floor(self.phase(grid))
        at = np.nonzero(whole[1:] > whole[:-1])[0]
        number = whole[at + 1]
        ph0 = self.phase(grid[at])
        ph1 = self.phase(grid[at + 1])
        t = grid[at] + _GRID_S * (number - ph0) / (ph1 - ph0)
        for _ in range(3):  # Newton steps on phase(t) = number
            t = t - (self.phase(t) - number) / (self.rate(t) / 60.0)
        keep = (t >= t_lo) & (t < t_hi)
        return t[keep], number[keep].astype(np.int64)


@dataclass(frozen=True)
class Beats:
    """Beats in a window: R-peak times (s), types ('N', 'V', 'A') and the preceding interval (s)."""

    times_s: FloatArray
    types: npt.NDArray[np.str_]
    rr_s: FloatArray

    def __len__(self) -> int:
        return len(self.times_s)


class RhythmModel:
    """Where the heart beats: sinus beats from ``heart``, AF episodes, premature ventricular beats.

    ``af_episodes`` carry the mean ventricular rate in AF (bpm) as magnitude; ``pvc_episodes`` add
    to ``pvc_per_min``. All randomness derives from ``seed`` and is addressed by beat, so any time
    window gives the same beats as a longer one that contains it.
    """

    def __init__(
        self,
        heart: RateModel,
        *,
        seed: int,
        af_episodes: Sequence[Episode] = (),
        pvc_per_min: float = 0.0,
        pvc_episodes: Sequence[Episode] = (),
    ) -> None:
        self.heart = heart
        self.seed = seed
        self.af_episodes = tuple(af_episodes)
        self.pvc_per_min = pvc_per_min
        self.pvc_episodes = tuple(pvc_episodes)
        self._af_cache: dict[int, FloatArray] = {}

    def _af_beats(self, index: int) -> FloatArray:
        cached = self._af_cache.get(index)
        if cached is not None:
            return cached
        episode = self.af_episodes[index]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, stream_key("af"), index])
        mean_rr = 60.0 / max(episode.magnitude, 20.0)
        expected = int(episode.duration_s / mean_rr * 1.3) + 8
        sigma = np.sqrt(np.log1p(_AF_CV**2))
        rr = mean_rr * np.exp(rng.normal(-0.5 * sigma**2, sigma, expected))
        rr = np.maximum(rr, _AF_MIN_RR_S)
        times = episode.start_s + rng.uniform(0.0, mean_rr) + np.concatenate([[0.0], np.cumsum(rr)])
        times = times[times < episode.end_s]
        self._af_cache[index] = times
        return times

    def _pvc_probability(self, t: FloatArray) -> FloatArray:
        per_min = np.full(t.shape, self.pvc_per_min, dtype=np.float64)
        for episode in self.pvc_episodes:
            per_min += episode.value(t)
        return np.clip(per_min / np.maximum(self.heart.rate(t), 1.0), 0.0, 0.3)

    def beats(self, t_lo: float, t_hi: float) -> Beats:
        """Beats with R peaks in ``[t_lo, t_hi)`` seconds."""
        margin = 4.0
        times, number = self.heart.crossings(t_lo - margin, t_hi + margin)
        types = np.full(times.shape, "N", dtype="<U1")
        rr = 60.0 / np.maximum(self.heart.rate(times), 1.0)
        if len(times) > 1 and (self.pvc_per_min > 0.0 or self.pvc_episodes):
            draw = keyed_uniform(self.seed, _PVC_KEY, np.maximum(number, 0))
            ectopic = (draw < self._pvc_probability(times)) & (number > 0)
            ectopic[0] = False
            ectopic[1:] &= ~ectopic[:-1]  # no couplets: a PVC needs a sinus beat before it
            at = np.nonzero(ectopic)[0]
            coupling = 0.55 + 0.1 * keyed_uniform(self.seed, _PVC_KEY + 1, number[at])
            interval = times[at] - times[at - 1]
            times = times.copy()
            times[at] = times[at - 1] + coupling * interval
            rr[at] = coupling * interval
            types[at] = "V"
        keep = np.ones(times.shape, dtype=bool)
        af_times: list[FloatArray] = []
        af_rr: list[FloatArray] = []
        for index, episode in enumerate(self.af_episodes):
            if episode.end_s < t_lo - margin or episode.start_s > t_hi + margin:
                continue
            beats = self._af_beats(index)
            last = beats[-1] if len(beats) else episode.start_s
            keep &= ~((times >= episode.start_s) & (times < last + 0.45))
            af_times.append(beats)
            previous = np.concatenate([[60.0 / max(episode.magnitude, 20.0)], np.diff(beats)])
            af_rr.append(previous)
        all_times = np.concatenate([times[keep], *af_times])
        all_types = np.concatenate([types[keep], *[np.full(len(a), "A", dtype="<U1") for a in af_times]])
        all_rr = np.concatenate([rr[keep], *af_rr])
        order = np.argsort(all_times, kind="stable")
        all_times, all_types, all_rr = all_times[order], all_types[order], all_rr[order]
        window = (all_times >= t_lo) & (all_times < t_hi)
        return Beats(all_times[window], all_types[window], all_rr[window])
