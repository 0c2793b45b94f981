"""Imperfections, each a separate function to compose: add the arrays, apply the masks.

Waveform noise (mV for ECG): baseline wander, power-line interference, EMG, motion-artifact bursts,
lead-off. Reading-stream faults (numeric series): dropouts, device clock drift, duplicated and late
readings. ``start_index`` places a waveform slice in absolute samples, so consecutive slices drawn
with Generators seeded alike join without a seam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.signals._keyed import keyed_normal

__all__ = [
    "DeliveredReadings",
    "apply_lead_off",
    "baseline_wander",
    "burst_mask",
    "clock_drift",
    "dropouts",
    "duplicate_and_late",
    "emg",
    "lead_off",
    "motion_artifacts",
    "powerline",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _times(n: int, fs: float, start_index: int) -> FloatArray:
    return np.arange(start_index, start_index + n, dtype=np.float64) / fs


def baseline_wander(
    n: int, fs: float, *, amplitude_mv: float, rng: np.random.Generator, start_index: int = 0
) -> FloatArray:
    """Slow baseline drift (0.05-0.5 Hz, breathing and electrode motion), peak about ``amplitude_mv``.

    ``n`` samples at ``fs`` Hz starting at absolute sample ``start_index``; returns mV to add.
    """
    freqs = rng.uniform(0.05, 0.5, 5)
    phases = rng.uniform(0.0, 2.0 * np.pi, 5)
    weights = rng.uniform(0.5, 1.0, 5)
    weights *= amplitude_mv / weights.sum() * 2.0
    t = _times(n, fs, start_index)
    out = np.zeros(n, dtype=np.float64)
    for f, p, w in zip(freqs, phases, weights, strict=True):
        out += w * np.sin(2.0 * np.pi * f * t + p)
    return out


def powerline(
    n: int,
    fs: float,
    *,
    hz: float = 50.0,
    amplitude_mv: float,
    rng: np.random.Generator,
    start_index: int = 0,
) -> FloatArray:
    """Mains interference at ``hz`` (50 or 60 Hz) with a weak third harmonic, amplitude in mV."""
    phase = rng.uniform(0.0, 2.0 * np.pi, 2)
    t = _times(n, fs, start_index)
    fundamental = np.sin(2.0 * np.pi * hz * t + phase[0])
    out: FloatArray = amplitude_mv * (fundamental + 0.15 * np.sin(2.0 * np.pi * 3.0 * hz * t + phase[1]))
    return out


def emg(
    n: int, fs: float, *, amplitude_mv: float, rng: np.random.Generator, start_index: int = 0
) -> FloatArray:
    """Muscle noise: high-passed Gaussian noise with standard deviation ``amplitude_mv`` (mV).

    ``fs`` is unused beyond documenting the rate: the noise is white per sample then differenced,
    which moves its power above ~fs/6, where muscle activity lives for ECG sampling rates.
    """
    del fs
    key = int(rng.integers(0, 2**31))
    white = keyed_normal(key, 0xE36, np.arange(start_index, start_index + n + 1))
    out: FloatArray = amplitude_mv * np.diff(white) / np.sqrt(2.0)
    return out


def burst_mask(
    n: int,
    fs: float,
    *,
    bursts_per_hour: float,
    mean_duration_s: float,
    rng: np.random.Generator,
) -> BoolArray:
    """Random windows (Poisson starts, exponential lengths) over ``n`` samples at ``fs`` Hz."""
    mask = np.zeros(n, dtype=bool)
    count = rng.poisson(bursts_per_hour * n / fs / 3600.0)
    starts = rng.integers(0, max(n, 1), count)
    lengths = np.maximum(1, (rng.exponential(mean_duration_s, count) * fs).astype(np.int64))
    for start, length in zip(starts, lengths, strict=True):
        mask[start : start + length] = True
    return mask


def motion_artifacts(
    n: int,
    fs: float,
    *,
    amplitude_mv: float,
    rng: np.random.Generator,
    bursts_per_hour: float = 6.0,
    mean_duration_s: float = 3.0,
    mask: BoolArray | None = None,
) -> tuple[FloatArray, BoolArray]:
    """Motion-artifact bursts: large, low-frequency (0.5-8 Hz) swings inside random windows.

    Returns (mV to add, mask of affected samples). Pass ``mask`` to choose the windows yourself.
    """
    if mask is None:
        mask = burst_mask(n, fs, bursts_per_hour=bursts_per_hour, mean_duration_s=mean_duration_s, rng=rng)
    t = np.arange(n, dtype=np.float64) / fs
    swing = np.zeros(n, dtype=np.float64)
    for f in rng.uniform(0.5, 8.0, 4):
        swing += np.sin(2.0 * np.pi * f * t + rng.uniform(0.0, 2.0 * np.pi)) / 4.0 * rng.uniform(0.5, 2.0)
    swing += 0.1 * rng.standard_normal(n)
    # Smooth the window edges over 50 ms so bursts do not add step edges of their own.
    edge = max(1, int(0.05 * fs))
    envelope = np.convolve(mask.astype(np.float64), np.ones(edge) / edge, mode="same")
    return amplitude_mv * swing * envelope, mask


def lead_off(
    n: int,
    fs: float,
    *,
    rng: np.random.Generator,
    episodes_per_hour: float = 2.0,
    mean_duration_s: float = 10.0,
) -> BoolArray:
    """Mask of samples where an electrode is off (random windows); apply with :func:`apply_lead_off`."""
    return burst_mask(n, fs, bursts_per_hour=episodes_per_hour, mean_duration_s=mean_duration_s, rng=rng)


def apply_lead_off(
    signal: FloatArray, mask: BoolArray, *, mode: str = "flat", rail_mv: float = 5.0
) -> FloatArray:
    """Return ``signal`` with masked samples flat at 0 mV (``mode="flat"``) or at ``+rail_mv``
    (``mode="saturated"``: the amplifier pinned at its rail)."""
    if mode not in ("flat", "saturated"):
        raise ValueError(f"mode must be 'flat' or 'saturated', not {mode!r}")
    out = np.array(signal, dtype=np.float64, copy=True)
    out[mask] = 0.0 if mode == "flat" else rail_mv
    return out


def dropouts(
    times_s: FloatArray,
    *,
    rng: np.random.Generator,
    gaps_per_day: float = 4.0,
    mean_gap_s: float = 600.0,
) -> BoolArray:
    """Keep-mask for readings at ``times_s`` (s): False inside random gaps (device out of range)."""
    t = np.asarray(times_s, dtype=np.float64)
    keep = np.ones(t.shape, dtype=bool)
    if len(t) == 0:
        return keep
    span = float(t.max() - t.min())
    count = rng.poisson(gaps_per_day * span / 86400.0)
    starts = rng.uniform(float(t.min()), float(t.max()), count)
    ends = starts + rng.exponential(mean_gap_s, count)
    for start, end in zip(starts, ends, strict=True):
        keep &= ~((t >= start) & (t < end))
    return keep


def clock_drift(times_s: FloatArray, *, ppm: float, offset_s: float = 0.0) -> FloatArray:
    """Times as a device clock reports them: running ``ppm`` parts per million fast, ``offset_s`` off."""
    t = np.asarray(times_s, dtype=np.float64)
    return t * (1.0 + ppm * 1e-6) + offset_s


@dataclass(frozen=True)
class DeliveredReadings:
    """Readings in delivery order: measured at ``times_s``, delivered at ``delivery_s`` (s)."""

    times_s: FloatArray
    values: FloatArray
    delivery_s: FloatArray


def duplicate_and_late(
    times_s: FloatArray,
    values: FloatArray,
    *,
    rng: np.random.Generator,
    duplicate_prob: float = 0.01,
    late_prob: float = 0.01,
    max_delay_s: float = 120.0,
) -> DeliveredReadings:
    """Duplicate some readings (delivered twice in a row) and delay others by up to ``max_delay_s``.

    The result is sorted by delivery time, so late readings appear after newer ones.
    """
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    delay = np.where(rng.random(len(t)) < late_prob, rng.uniform(0.0, max_delay_s, len(t)), 0.0)
    copies = np.where(rng.random(len(t)) < duplicate_prob, 2, 1)
    t_out = np.repeat(t, copies)
    v_out = np.repeat(v, copies)
    d_out = np.repeat(t + delay, copies)
    order = np.argsort(d_out, kind="stable")
    return DeliveredReadings(t_out[order], v_out[order], d_out[order])
