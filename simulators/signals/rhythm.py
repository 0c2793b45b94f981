"""Heart and breathing rhythms as functions of time: rates, phases and beat times.

A rate (beats or breaths per minute) is a baseline plus episode offsets plus a sum of random-phase
sinusoids (the variability). Its integral, the phase in cycles, is known in closed form, so a beat
falls wherever the phase crosses an integer (integral pulse frequency modulation). Everything is a
pure function of absolute time: any window can be generated on its own and agrees with any other.

Heart-rate variability follows ECGSYN (McSharry et al., 2003): power in a Mayer band around 0.1 Hz
(LF) and a respiratory band (HF) at the breathing frequency, both Gaussian with 0.01 Hz spread, in a
chosen LF/HF power ratio. Atrial fibrillation replaces sinus beats by irregular ones (log-normal
intervals) over its episodes. Premature ventricular beats (PVCs) come early and leave a full
compensatory pause (the sinus node keeps its schedule; each sinus beat a PVC pre-empts is dropped).
They come alone, as couplets, or in runs of bigeminy (every other beat) or trigeminy (every third
beat), each run from one of several ectopic foci (each focus its own QRS morphology, see
:mod:`simulators.signals.ecg`).
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
# What a PVC run that starts at a sinus beat looks like: (share of runs, beats between PVCs, fewest and
# most PVCs). Isolated PVCs and couplets, then bigeminy (N V N V ...) and trigeminy (N N V N N V ...).
_PVC_PATTERNS = (
    (0.55, 1, 1, 1),  # isolated
    (0.15, 1, 2, 2),  # couplet
    (0.18, 2, 3, 8),  # bigeminy
    (0.12, 3, 3, 6),  # trigeminy
)
_PVC_SPAN = max(step * (most - 1) for _share, step, _fewest, most in _PVC_PATTERNS)
_PVC_MEAN = sum(share * 0.5 * (fewest + most) for share, _step, fewest, most in _PVC_PATTERNS)
_MAX_FOCI = 3


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
    """Beats in a window: R-peak times (s), types ('N', 'V', 'A'), the preceding interval (s) and,
    for ventricular beats, the ectopic focus (1, 2, ...; 0 for every other beat)."""

    times_s: FloatArray
    types: npt.NDArray[np.str_]
    rr_s: FloatArray
    foci: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.times_s)


class RhythmModel:
    """Where the heart beats: sinus beats from ``heart``, AF episodes, premature ventricular beats.

    ``af_episodes`` carry the mean ventricular rate in AF (bpm) as magnitude; ``pvc_episodes`` add
    to ``pvc_per_min`` (PVCs per minute on average, counting every PVC of couplets and runs).
    ``pvc_foci`` (1-3) is the number of ectopic foci, each with its own QRS morphology. All
    randomness derives from ``seed`` and is addressed by beat, so any time window gives the same
    beats as a longer one that contains it.
    """

    def __init__(
        self,
        heart: RateModel,
        *,
        seed: int,
        af_episodes: Sequence[Episode] = (),
        pvc_per_min: float = 0.0,
        pvc_episodes: Sequence[Episode] = (),
        pvc_foci: int = 2,
    ) -> None:
        if not 1 <= pvc_foci <= _MAX_FOCI:
            raise ValueError(f"pvc_foci must be 1 to {_MAX_FOCI}, not {pvc_foci}")
        self.pvc_foci = pvc_foci
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
        # Runs start at this share of sinus beats; each brings _PVC_MEAN PVCs on average.
        return np.clip(per_min / np.maximum(self.heart.rate(t), 1.0) / _PVC_MEAN, 0.0, 0.2)

    def _ectopic(self, number: npt.NDArray[np.int64], times: FloatArray) -> tuple[
            npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """Which sinus beats (by number) a PVC pre-empts, and its focus: a pure function of the
        numbers (runs that start before the window are found from their own keyed draws)."""
        ectopic = np.zeros(number.shape, dtype=bool)
        foci = np.zeros(number.shape, dtype=np.int64)
        # Every beat that could start a run reaching these beats, at about its time (the sinus
        # cycle near the beat, counted back).
        back = np.arange(_PVC_SPAN + 1)
        starts = number[:, None] - back[None, :]
        valid = starts > 0
        safe = np.maximum(starts, 0)
        start_draw = keyed_uniform(self.seed, _PVC_KEY, safe)
        cycle = 60.0 / np.maximum(self.heart.rate(times), 1.0)
        chance = self._pvc_probability(times[:, None] - back[None, :] * cycle[:, None])
        started = valid & (start_draw < chance)
        if not started.any():
            return ectopic, foci
        kind_draw = keyed_uniform(self.seed, _PVC_KEY + 2, safe)
        length_draw = keyed_uniform(self.seed, _PVC_KEY + 3, safe)
        focus_draw = keyed_uniform(self.seed, _PVC_KEY + 4, safe)
        edge = 0.0
        for share, step, fewest, most in _PVC_PATTERNS:
            kind = started & (kind_draw >= edge) & (kind_draw < edge + share)
            edge += share
            count = fewest + np.floor(length_draw * (most - fewest + 1)).astype(np.int64)
            # Beat ``n`` is in a run starting ``back`` beats earlier when back is a multiple of the
            # step below the run's reach.
            inside = kind & (back[None, :] % step == 0) & (back[None, :] < step * count)
            hit = inside.any(axis=1)
            first = np.argmax(inside, axis=1)  # the latest run start reaching the beat decides its focus
            focus = 1 + np.floor(focus_draw[np.arange(number.size), first] * self.pvc_foci).astype(np.int64)
            foci = np.where(hit & ~ectopic, focus, foci)
            ectopic |= hit
        return ectopic, foci

    def beats(self, t_lo: float, t_hi: float) -> Beats:
        """Beats with R peaks in ``[t_lo, t_hi)`` seconds."""
        margin = 4.0
        times, number = self.heart.crossings(t_lo - margin, t_hi + margin)
        types = np.full(times.shape, "N", dtype="<U1")
        foci = np.zeros(times.shape, dtype=np.int64)
        rr = 60.0 / np.maximum(self.heart.rate(times), 1.0)
        if len(times) > 1 and (self.pvc_per_min > 0.0 or self.pvc_episodes):
            ectopic, focus = self._ectopic(number, times)
            ectopic[0] = False  # (the margin keeps the window's beats far from the first)
            # No ventricular tachycardia: at most two PVCs in a row.
            ectopic[2:] &= ~(ectopic[1:-1] & ectopic[:-2])
            at = np.nonzero(ectopic)[0]
            coupling = 0.55 + 0.12 * keyed_uniform(self.seed, _PVC_KEY + 1, number[at])
            sinus = times
            times = times.copy()
            # In order: the second PVC of a couplet follows the first (already moved) at its own
            # coupling interval of the sinus cycle; the next sinus beat keeps its schedule.
            for i, c in zip(at.tolist(), coupling.tolist(), strict=True):
                times[i] = times[i - 1] + c * (sinus[i] - sinus[i - 1])
                rr[i] = times[i] - times[i - 1]
            types[at] = "V"
            foci[at] = focus[at]
        after = np.nonzero(types[:-1] == "V")[0] + 1
        rr[after] = times[after] - times[after - 1]  # the compensatory pause
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
        all_foci = np.concatenate([foci[keep], *[np.zeros(len(a), dtype=np.int64) for a in af_times]])
        order = np.argsort(all_times, kind="stable")
        all_times, all_types, all_rr, all_foci = all_times[order], all_types[order], all_rr[order], all_foci[order]
        window = (all_times >= t_lo) & (all_times < t_hi)
        return Beats(all_times[window], all_types[window], all_rr[window], all_foci[window])
