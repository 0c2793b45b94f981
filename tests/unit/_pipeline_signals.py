"""Small deterministic synthetic signals for the pipeline tests (no simulator dependency)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def synthetic_ecg(
    duration_s: float, fs: float, *, rr_s: float = 0.85, rr_jitter_s: float = 0.04, seed: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """A lead-II-like ECG (mV) of Gaussian P, QRS and T waves, and its R-peak sample indices."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs)
    t = np.arange(n) / fs
    beats = []
    time = 0.3
    while time < duration_s - 0.4:
        beats.append(time)
        time += rr_s + rng.uniform(-rr_jitter_s, rr_jitter_s)
    signal = np.zeros(n)
    for beat in beats:
        lo, hi = max(int((beat - 0.3) * fs), 0), min(int((beat + 0.5) * fs), n)
        seg = t[lo:hi] - beat
        signal[lo:hi] += (
            0.12 * np.exp(-0.5 * ((seg + 0.16) / 0.025) ** 2)
            - 0.1 * np.exp(-0.5 * ((seg + 0.025) / 0.008) ** 2)
            + 1.0 * np.exp(-0.5 * (seg / 0.01) ** 2)
            - 0.2 * np.exp(-0.5 * ((seg - 0.025) / 0.008) ** 2)
            + 0.3 * np.exp(-0.5 * ((seg - 0.28) / 0.04) ** 2)
        )
    return signal, np.rint(np.asarray(beats) * fs).astype(np.int64)


def synthetic_ppg(duration_s: float, fs: float, *, period_s: float = 0.8) -> npt.NDArray[np.float64]:
    """A pulse wave (arbitrary units, with a DC level) with one systolic peak per period."""
    t = np.arange(round(duration_s * fs)) / fs
    phase = (t % period_s) / period_s
    wave = np.exp(-0.5 * ((phase - 0.2) / 0.07) ** 2) + 0.35 * np.exp(-0.5 * ((phase - 0.5) / 0.08) ** 2)
    return 20_000.0 + 800.0 * wave


def match(detected: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], tolerance: int) -> int:
    """Count true peaks matched one-to-one by a detection within ``tolerance`` samples."""
    used = np.zeros(detected.size, dtype=bool)
    hits = 0
    for peak in truth:
        near = np.flatnonzero(~used & (np.abs(detected - peak) <= tolerance))
        if near.size:
            used[near[0]] = True
            hits += 1
    return hits
