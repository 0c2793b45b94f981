"""ECG in the spirit of ECGSYN: P-QRS-T waves as Gaussians placed on each beat, warped by its RR.

Rather than integrating the ECGSYN ordinary differential equations sample by sample, each beat's
waves are rendered directly from a template: the P wave and QRS keep their timing, the T wave moves
and widens with the square root of the RR interval (Bazett's QT scaling). Beats come from
:mod:`simulators.signals.rhythm`; respiration modulates the QRS amplitude and the baseline; atrial
fibrillation removes P waves and adds fibrillatory f-waves (4-8 Hz). Premature ventricular beats
(alone, in couplets, bigeminy or trigeminy; see :mod:`simulators.signals.rhythm`) have no P wave, a
wide QRS (about 150-180 ms from onset to end, where sinus beats have about 100 ms), larger than the
sinus QRS and upright or inverted by ectopic focus, and a discordant T wave. Output in mV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.signals.events import Episode, Event
from simulators.signals.rhythm import Beats, RateModel, RhythmModel, Variability

__all__ = ["EcgModel", "EcgSimulation", "simulate_ecg"]

FloatArray = npt.NDArray[np.float64]

# Template at RR = 1 s: rows P, Q, R, S, T1, T2 as (centre s, width s, amplitude mV).
_NORMAL = np.array([
    [-0.200, 0.025, 0.12],
    [-0.035, 0.010, -0.10],
    [0.000, 0.011, 1.00],
    [0.035, 0.012, -0.22],
    [0.280, 0.050, 0.22],
    [0.340, 0.035, 0.12],
])
# Ventricular beats, one template per ectopic focus: no P wave, a wide QRS (about 120-200 ms from
# onset to end, against about 90 ms for sinus beats) that is larger than the sinus QRS, and a T wave
# opposite to the QRS's main deflection (discordant). The main deflection sits at 0 s (the beat's
# time). Focus 1: tall and upright; focus 2: deep and inverted, after a small r wave; focus 3: wide
# and notched (two upright peaks), the slowest to rise.
_VENTRICULAR = np.array([
    [
        [-0.200, 0.025, 0.0],
        [-0.045, 0.018, -0.08],
        [0.000, 0.026, 1.55],
        [0.065, 0.030, -0.40],
        [0.300, 0.065, -0.45],
        [0.370, 0.045, -0.10],
    ],
    [
        [-0.200, 0.025, 0.0],
        [-0.050, 0.014, 0.22],
        [0.000, 0.030, -1.70],
        [0.055, 0.026, -0.25],
        [0.310, 0.070, 0.50],
        [0.380, 0.045, 0.10],
    ],
    [
        [-0.200, 0.025, 0.0],
        [-0.048, 0.017, 0.80],
        [0.000, 0.020, 1.30],
        [0.042, 0.018, -0.20],
        [0.320, 0.075, -0.40],
        [0.390, 0.050, -0.08],
    ],
])
_T_ROWS = np.array([False, False, False, False, True, True])
_P_ROW = 0
_SPAN_S = (-0.34, 1.05)  # rendering window around each R peak; every wave fits with 5 widths
_BATCH = 512
_RESP_AMPLITUDE = 0.08  # respiratory modulation of QRS amplitude (fraction)
_RESP_BASELINE_MV = 0.04
_FWAVE_MV = 0.06


@dataclass(frozen=True)
class EcgSimulation:
    """A simulated ECG with its ground truth.

    ``signal`` in mV at ``fs`` Hz; ``r_peaks`` sample indices (each on the main deflection of its
    QRS, which points down in inverted ventricular beats); ``beat_types`` 'N' (sinus), 'V'
    (premature ventricular), 'A' (conducted in atrial fibrillation); ``events`` windows;
    ``beat_foci`` the ectopic focus of each beat (1, 2, ... for 'V', else 0).
    """

    signal: FloatArray
    fs: float
    r_peaks: npt.NDArray[np.int64]
    beat_types: npt.NDArray[np.str_]
    events: list[Event] = field(default_factory=list)
    beat_foci: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _wave_table(beats: Beats) -> FloatArray:
    """Per beat and wave: centre (s from R), width (s), amplitude (mV); shape (beats, 6, 3)."""
    focus = np.clip(beats.foci - 1, 0, len(_VENTRICULAR) - 1)
    table = np.where((beats.types == "V")[:, None, None], _VENTRICULAR[focus], _NORMAL)
    warp = np.sqrt(np.clip(beats.rr_s, 0.3, 2.0))
    table[:, _T_ROWS, 0] *= warp[:, None]
    table[:, _T_ROWS, 1] *= warp[:, None]
    rr = np.clip(beats.rr_s, 0.3, 2.0)
    table[:, _P_ROW, 0] *= 0.85 + 0.15 * rr  # PR shortens a little as the heart speeds up
    table[beats.types == "A", _P_ROW, 2] = 0.0
    return table


def render_beats(sample_lo: int, sample_hi: int, fs: float, beats: Beats, scale: FloatArray) -> FloatArray:
    """Sum of the P-QRS-T waves of ``beats`` on samples ``[sample_lo, sample_hi)`` at ``fs`` Hz (mV).

    ``scale`` multiplies each beat's waves (amplitude and respiratory modulation).
    """
    n = sample_hi - sample_lo
    out = np.zeros(n, dtype=np.float64)
    if len(beats) == 0 or n <= 0:
        return out
    table = _wave_table(beats)
    offsets = np.arange(int(np.floor(_SPAN_S[0] * fs)), int(np.ceil(_SPAN_S[1] * fs)) + 1)
    for lo in range(0, len(beats), _BATCH):
        part = slice(lo, lo + _BATCH)
        r_time = beats.times_s[part]
        first = np.rint(r_time * fs).astype(np.int64)
        index = first[:, None] + offsets[None, :]  # absolute sample numbers, shape (B, W)
        tau = index / fs - r_time[:, None]  # seconds from each R peak
        waves = table[part]
        value = np.zeros(tau.shape, dtype=np.float64)
        for row in range(waves.shape[1]):
            centre = waves[:, row, 0][:, None]
            width = waves[:, row, 1][:, None]
            amp = waves[:, row, 2][:, None]
            value += amp * np.exp(-0.5 * ((tau - centre) / width) ** 2)
        value *= scale[part][:, None]
        local = index - sample_lo
        inside = (local >= 0) & (local < n)
        out += np.bincount(local[inside], weights=value[inside], minlength=n)
    return out


class EcgModel:
    """An ECG generator over absolute time: any sample range renders the same as a longer one.

    ``respiration`` is a breathing rate model (breaths/min); ``af_episodes`` as in
    :class:`RhythmModel` (f-waves are drawn during them).
    """

    def __init__(
        self,
        rhythm: RhythmModel,
        respiration: RateModel,
        *,
        amplitude_mv: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.rhythm = rhythm
        self.respiration = respiration
        self.amplitude_mv = amplitude_mv
        rng = np.random.default_rng([seed & 0xFFFFFFFF, 0xECC])
        self._fwave_phase = rng.uniform(0.0, 2.0 * np.pi, 3)

    def beats(self, t_lo: float, t_hi: float) -> Beats:
        """Beats with R peaks in ``[t_lo, t_hi)`` seconds."""
        return self.rhythm.beats(t_lo, t_hi)

    def _fwaves(self, t: FloatArray) -> FloatArray:
        out = np.zeros(t.shape, dtype=np.float64)
        p = self._fwave_phase
        for episode in self.rhythm.af_episodes:
            inside = (t > episode.start_s - 1.0) & (t < episode.end_s + 1.0)
            if not inside.any():
                continue
            ti = t[inside]
            taper = Episode(episode.start_s, episode.duration_s, 1.0, 0.5).value(ti)
            # Frequency wanders 5-7 Hz; amplitude breathes slowly.
            cycles = 6.0 * ti + (1.0 / (2.0 * np.pi * 0.15)) * np.sin(2.0 * np.pi * 0.15 * ti + p[0])
            amp = _FWAVE_MV * (1.0 + 0.35 * np.sin(2.0 * np.pi * 0.4 * ti + p[1]))
            out[inside] += taper * amp * np.sin(2.0 * np.pi * cycles + p[2])
        return out * self.amplitude_mv

    def render(self, sample_lo: int, sample_hi: int, fs: float) -> tuple[FloatArray, Beats]:
        """Clean ECG (mV) for samples ``[sample_lo, sample_hi)`` at ``fs`` Hz, and the beats inside."""
        t0 = sample_lo / fs
        t1 = sample_hi / fs
        around = self.beats(t0 - _SPAN_S[1] - 0.1, t1 - _SPAN_S[0] + 0.1)
        breath = np.sin(2.0 * np.pi * self.respiration.phase(around.times_s))
        scale = self.amplitude_mv * (1.0 + _RESP_AMPLITUDE * breath)
        signal = render_beats(sample_lo, sample_hi, fs, around, scale)
        t = np.arange(sample_lo, sample_hi, dtype=np.float64) / fs
        signal += self.amplitude_mv * _RESP_BASELINE_MV * np.sin(2.0 * np.pi * self.respiration.phase(t))
        signal += self._fwaves(t)
        inside = (around.times_s >= t0) & (around.times_s < t1)
        return signal, Beats(around.times_s[inside], around.types[inside], around.rr_s[inside], around.foci[inside])


def simulate_ecg(
    duration_s: float,
    fs: float,
    *,
    heart_rate: float = 70.0,
    heart_rate_std: float = 3.0,
    lf_hf_ratio: float = 1.5,
    rhythm: str = "sinus",
    pvc_per_min: float = 0.0,
    pvc_foci: int = 2,
    amplitude_mv: float = 1.0,
    respiratory_rate: float = 15.0,
    seed: int = 0,
) -> EcgSimulation:
    """Simulate ``duration_s`` seconds of clean lead-II-like ECG at ``fs`` Hz (mV).

    ``heart_rate`` mean (bpm) with standard deviation ``heart_rate_std`` (bpm) split into LF (0.1 Hz)
    and HF (breathing, ``respiratory_rate`` /min) power by ``lf_hf_ratio``. ``rhythm`` is "sinus" or
    "af" (the whole record in atrial fibrillation at mean ventricular rate ``heart_rate``).
    ``pvc_per_min`` premature ventricular beats per minute on average (alone, in couplets and in runs
    of bigeminy or trigeminy) from ``pvc_foci`` (1-3) ectopic foci. Deterministic by ``seed``.
    """
    if rhythm not in ("sinus", "af"):
        raise ValueError(f"rhythm must be 'sinus' or 'af', not {rhythm!r}")
    if duration_s <= 0 or fs <= 0:
        raise ValueError("duration_s and fs must be positive")
    rng = np.random.default_rng(seed)
    variability = Variability.heart_rate(
        rng, std_per_min=heart_rate_std, lf_hf_ratio=lf_hf_ratio, hf_hz=respiratory_rate / 60.0
    )
    heart = RateModel(heart_rate, variability=variability, phase_offset=float(rng.uniform()))
    breathing = RateModel(
        respiratory_rate, variability=Variability.slow_drift(rng, std=0.5), phase_offset=float(rng.uniform())
    )
    af = [Episode(0.0, float(duration_s), heart_rate)] if rhythm == "af" else []
    model = EcgModel(
        RhythmModel(heart, seed=seed, af_episodes=af, pvc_per_min=pvc_per_min, pvc_foci=pvc_foci),
        breathing,
        amplitude_mv=amplitude_mv,
        seed=seed,
    )
    n = round(duration_s * fs)
    signal, beats = model.render(0, n, fs)
    r_peaks = np.rint(beats.times_s * fs).astype(np.int64)
    inside = (r_peaks >= 0) & (r_peaks < n)
    events = [Event("af", 0.0, float(duration_s))] if rhythm == "af" else []
    return EcgSimulation(signal, float(fs), r_peaks[inside], beats.types[inside], events, beats.foci[inside])
