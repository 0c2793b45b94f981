"""R-peak detection: ours against neurokit2 on the same simulated records (ground truth known).

Records come from :mod:`simulators.signals` (clean sinus; noisy = baseline wander, mains, muscle
noise and motion bursts; atrial fibrillation; frequent premature ventricular beats). A detection
matches a true R peak one-to-one within 150 ms. neurokit2 runs as documented: ``ecg_clean`` then
``ecg_peaks`` (its default method); ours takes the raw signal. Times are the best of three runs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edge.pipeline.ecg import detect_r_peaks
from simulators.signals import noise, simulate_ecg

FS = 250.0
DURATION_S = 300.0
SEEDS = (1, 2, 3)
TOLERANCE_S = 0.150


def _records(condition: str, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    if condition == "af":
        sim = simulate_ecg(DURATION_S, FS, heart_rate=85, rhythm="af", seed=seed)
    elif condition == "ectopic":
        sim = simulate_ecg(DURATION_S, FS, heart_rate=72, pvc_per_min=8, seed=seed)
    else:
        sim = simulate_ecg(DURATION_S, FS, heart_rate=60 + 10 * seed, seed=seed)
    signal = sim.signal
    if condition == "noisy":
        rng = np.random.default_rng(100 + seed)
        n = signal.size
        motion, _mask = noise.motion_artifacts(n, FS, amplitude_mv=0.3, rng=rng, bursts_per_hour=12)
        signal = (signal + noise.baseline_wander(n, FS, amplitude_mv=0.5, rng=rng)
                  + noise.powerline(n, FS, amplitude_mv=0.1, rng=rng)
                  + noise.emg(n, FS, amplitude_mv=0.05, rng=rng) + motion)
    return signal, sim.r_peaks


def _match(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], tolerance: int) -> int:
    found = np.sort(found)
    used = np.zeros(found.size, dtype=bool)
    hits = 0
    for peak in truth:
        i = int(np.searchsorted(found, peak - tolerance))
        while i < found.size and found[i] <= peak + tolerance:
            if not used[i]:
                used[i] = True
                hits += 1
                break
            i += 1
    return hits


def _best_time(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _neurokit() -> tuple[Callable[[npt.NDArray[np.float64]], npt.NDArray[np.int64]],
                         Callable[[npt.NDArray[np.float64]], object], Callable[[npt.NDArray[np.float64]], object]]:
    import neurokit2 as nk

    def peaks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        _signals, info = nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=FS), sampling_rate=FS)
        return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)

    def peaks_only(x: npt.NDArray[np.float64]) -> object:
        return nk.ecg_peaks(x, sampling_rate=FS)

    def clean(x: npt.NDArray[np.float64]) -> object:
        return nk.ecg_clean(x, sampling_rate=FS)

    return peaks, peaks_only, clean


def run() -> str:
    """Measure Se, +P and speed of both detectors; return a Markdown section."""
    warnings.filterwarnings("ignore")
    nk_peaks, nk_peaks_only, nk_clean = _neurokit()
    tolerance = round(TOLERANCE_S * FS)
    rows = []
    totals = {"ours": 0.0, "nk": 0.0, "nk_only": 0.0}
    for condition in ("clean", "noisy", "af", "ectopic"):
        counts = {"truth": 0, "ours_found": 0, "ours_hits": 0, "nk_found": 0, "nk_hits": 0}
        ours_s = nk_s = nk_only_s = 0.0
        for seed in SEEDS:
            signal, truth = _records(condition, seed)
            ours = detect_r_peaks(signal, FS)
            theirs = nk_peaks(signal)
            counts["truth"] += truth.size
            counts["ours_found"] += ours.size
            counts["ours_hits"] += _match(ours, truth, tolerance)
            counts["nk_found"] += theirs.size
            counts["nk_hits"] += _match(theirs, truth, tolerance)
            ours_s += _best_time(lambda s=signal: detect_r_peaks(s, FS))
            nk_s += _best_time(lambda s=signal: nk_peaks(s))
            cleaned = np.asarray(nk_clean(signal))
            nk_only_s += _best_time(lambda c=cleaned: nk_peaks_only(c))
        totals["ours"] += ours_s
        totals["nk"] += nk_s
        totals["nk_only"] += nk_only_s
        truth = counts["truth"]
        ours_se, ours_pp = 100 * counts["ours_hits"] / truth, 100 * counts["ours_hits"] / max(counts["ours_found"], 1)
        nk_se, nk_pp = 100 * counts["nk_hits"] / truth, 100 * counts["nk_hits"] / max(counts["nk_found"], 1)
        rows.append(
            f"| {condition} | {truth} | {ours_se:.2f} | {ours_pp:.2f} | {nk_se:.2f} | {nk_pp:.2f} "
            f"| {1e3 * ours_s:.1f} | {1e3 * nk_s:.1f} | {nk_s / ours_s:.1f}x | {nk_only_s / ours_s:.1f}x |"
        )
    seconds = DURATION_S * len(SEEDS) * 4
    return "\n".join([
        "## R-peak detection",
        "",
        f"Simulated lead-II ECG (`simulators.signals.simulate_ecg`), {FS:g} Hz, {len(SEEDS)} records of "
        f"{DURATION_S:g} s per condition; Se and +P in % at {1e3 * TOLERANCE_S:g} ms tolerance against the "
        "simulator's R peaks. Noisy: baseline wander 0.5 mV, 50 Hz mains 0.1 mV, muscle noise 0.05 mV, "
        "motion bursts 0.3 mV (12/h). AF: atrial fibrillation throughout (85/min). Ectopic: 8 premature "
        "ventricular beats/min. Ours: `edge.pipeline.ecg.detect_r_peaks` on the raw signal. neurokit2: "
        "`ecg_clean` + `ecg_peaks` (default method). Times: best of 3, summed over records.",
        "",
        "| condition | beats | ours Se | ours +P | nk Se | nk +P | ours ms | nk ms | speed-up vs nk clean+peaks "
        "| vs nk peaks alone |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Overall: ours {seconds / totals['ours']:.0f}x real time, neurokit2 clean+peaks "
        f"{seconds / totals['nk']:.0f}x; speed-up {totals['nk'] / totals['ours']:.1f}x "
        f"({totals['nk_only'] / totals['ours']:.1f}x against `ecg_peaks` alone on pre-cleaned signals).",
    ])


if __name__ == "__main__":
    print(run())
