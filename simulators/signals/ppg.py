"""Photoplethysmogram: one pulse per heart beat, arriving a pulse-arrival time after the R peak.

Each pulse is a fast systolic wave and a later, smaller diastolic (reflected) wave; the dip between
them is the dicrotic notch. Waves are gamma-shaped (zero before the foot, smooth after it), their
timing scaled by the square root of the RR interval. Weak beats eject less: a premature ventricular
beat gives a small pulse, and in AF the pulse follows the preceding interval. Respiration shifts the
baseline and modulates the amplitude. Arbitrary units, pulse amplitude ~1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.signals.events import Event
from simulators.signals.rhythm import RateModel, Variability

__all__ = [
    "PpgSimulation",
    "pulse_amplitudes",
    "render_pulses",
    "respiratory_modulation",
    "simulate_ppg",
    "systolic_peak_delay_s",
]

FloatArray = npt.NDArray[np.float64]

# (peak time after foot s, shape k, amplitude) for the systolic and diastolic waves at RR = 1 s.
_WAVES = ((0.13, 3.0, 1.0), (0.40, 16.0, 0.45))
_SPAN_S = 1.3
_BATCH = 512
_RESP_AMPLITUDE = 0.12
_RESP_BASELINE = 0.15


@dataclass(frozen=True)
class PpgSimulation:
    """A simulated PPG with its ground truth.

    ``signal`` in arbitrary units at ``fs`` Hz; ``foot_times_s`` pulse onsets (s);
    ``peak_times_s`` systolic peaks (s); ``pulse_amplitudes`` per pulse; ``events`` windows.
    """

    signal: FloatArray
    fs: float
    foot_times_s: FloatArray
    peak_times_s: FloatArray
    pulse_amplitudes: FloatArray
    events: list[Event] = field(default_factory=list)


def _gamma_wave(tau: FloatArray, peak_s: FloatArray, k: float) -> FloatArray:
    # (x e^(1-x))^k with x = tau / peak: 0 at the foot, 1 at the peak, smooth decay after it.
    x = np.maximum(tau, 0.0) / peak_s
    return np.where(tau > 0.0, (x * np.exp(1.0 - x)) ** k, 0.0)


def pulse_amplitudes(
    rr_s: FloatArray,
    types: npt.NDArray[np.str_] | None = None,
    typical_rr_s: FloatArray | float | None = None,
) -> FloatArray:
    """Relative pulse amplitude per beat from its preceding interval ``rr_s`` (s) and type.

    ``typical_rr_s`` is the usual interval (s) to compare with; default the median of ``rr_s``.
    """
    rr = np.asarray(rr_s, dtype=np.float64)
    if typical_rr_s is not None:
        typical: FloatArray | float = typical_rr_s
    else:
        typical = float(np.median(rr)) if len(rr) else 1.0
    amp = np.clip(rr / typical, 0.35, 1.3) ** 0.8  # shorter filling time, smaller stroke volume
    if types is not None:
        amp = np.where(types == "V", amp * 0.5, amp)
    return amp


def render_pulses(
    sample_lo: int,
    sample_hi: int,
    fs: float,
    foot_times_s: FloatArray,
    rr_s: FloatArray,
    amplitudes: FloatArray,
) -> FloatArray:
    """Sum of pulses with feet at ``foot_times_s`` on samples ``[sample_lo, sample_hi)`` (a.u.)."""
    n = sample_hi - sample_lo
    out = np.zeros(n, dtype=np.float64)
    if len(foot_times_s) == 0 or n <= 0:
        return out
    offsets = np.arange(0, int(np.ceil(_SPAN_S * fs)) + 1)
    for lo in range(0, len(foot_times_s), _BATCH):
        part = slice(lo, lo + _BATCH)
        foot = foot_times_s[part]
        index = np.floor(foot * fs).astype(np.int64)[:, None] + offsets[None, :]
        tau = index / fs - foot[:, None]
        warp = np.sqrt(np.clip(rr_s[part], 0.3, 2.0))[:, None]
        value = np.zeros(tau.shape, dtype=np.float64)
        for peak_s, k, amp in _WAVES:
            value += amp * _gamma_wave(tau, peak_s * warp, k)
        value *= amplitudes[part][:, None]
        local = index - sample_lo
        inside = (local >= 0) & (local < n)
        out += np.bincount(local[inside], weights=value[inside], minlength=n)
    return out


def respiratory_modulation(signal: FloatArray, breath_phase_cycles: FloatArray) -> FloatArray:
    """Apply breathing: amplitude modulation and a baseline shift (same shape as ``signal``)."""
    angle = 2.0 * np.pi * np.asarray(breath_phase_cycles, dtype=np.float64)
    return signal * (1.0 + _RESP_AMPLITUDE * np.sin(angle)) + _RESP_BASELINE * np.cos(angle)


def systolic_peak_delay_s(rr_s: FloatArray) -> FloatArray:
    """Time from pulse foot to systolic peak (s) for preceding interval ``rr_s`` (s), approximately."""
    return _WAVES[0][0] * np.sqrt(np.clip(np.asarray(rr_s, dtype=np.float64), 0.3, 2.0))


def simulate_ppg(
    r_peak_times_s: npt.ArrayLike,
    duration_s: float,
    fs: float,
    *,
    seed: int = 0,
    pulse_arrival_s: float = 0.22,
    pulse_arrival_jitter_s: float = 0.005,
    respiratory_rate: float = 15.0,
    amplitude: float = 1.0,
    beat_types: npt.ArrayLike | None = None,
) -> PpgSimulation:
    """Simulate a PPG (arbitrary units) at ``fs`` Hz for beats at ``r_peak_times_s`` (s).

    Each pulse foot follows its R peak by ``pulse_arrival_s`` (s, plus Gaussian jitter of
    ``pulse_arrival_jitter_s``); breathing at ``respiratory_rate`` /min modulates amplitude and
    baseline. ``beat_types`` ('N', 'V', 'A') shrink premature ventricular pulses.
    """
    rng = np.random.default_rng(seed)
    r_times = np.sort(np.asarray(r_peak_times_s, dtype=np.float64))
    types = None if beat_types is None else np.asarray(beat_types, dtype="<U1")
    rr = np.diff(r_times, prepend=r_times[0] - (np.median(np.diff(r_times)) if len(r_times) > 1 else 1.0))
    feet = r_times + pulse_arrival_s + rng.normal(0.0, pulse_arrival_jitter_s, len(r_times))
    amps = amplitude * pulse_amplitudes(rr, types)
    n = round(duration_s * fs)
    signal = render_pulses(0, n, fs, feet, rr, amps)
    breathing = RateModel(
        respiratory_rate, variability=Variability.slow_drift(rng, std=0.5), phase_offset=float(rng.uniform())
    )
    t = np.arange(n, dtype=np.float64) / fs
    signal = respiratory_modulation(signal, breathing.phase(t))
    return PpgSimulation(signal, float(fs), feet, feet + systolic_peak_delay_s(rr), amps)
