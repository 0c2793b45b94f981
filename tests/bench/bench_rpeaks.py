"""R-peak detection: ours against neurokit2 on the same simulated records (ground truth known).

Records come from :mod:`simulators.signals` (clean sinus; noisy = strong baseline wander, mains,
muscle noise and frequent motion bursts; atrial fibrillation; frequent premature ventricular beats).
A detection matches a true R peak one-to-one within 150 ms. The baseline is ``neurokit2.ecg_peaks``
(its default method) on the same raw signals ours takes; ``ecg_clean`` + ``ecg_peaks`` (neurokit2's
documented pipeline) is shown too. Every detector is timed the same way: best of five runs.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edge.pipeline.ecg import detect_r_peaks
from simulators.signals import noise, simulate_ecg

FS = 250.0
DURATION_S = 300.0
SEEDS = tuple(range(1, 11))  # ten 5 min records per condition
TOLERANCE_S = 0.150
REPEATS = 5
# Noisy records: harder than a resting patch (walking, arm movement), so the condition separates
# detectors instead of both scoring 100 %.
WANDER_MV, MAINS_MV, EMG_MV, MOTION_MV, MOTION_PER_H = 0.8, 0.2, 0.12, 1.0, 40


def _records(condition: str, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    if condition == "af":
        sim = simulate_ecg(DURATION_S, FS, heart_rate=85, rhythm="af", seed=seed)
    elif condition == "ectopic":
        sim = simulate_ecg(DURATION_S, FS, heart_rate=72, pvc_per_min=8, seed=seed)
    else:
        sim = simulate_ecg(DURATION_S, FS, heart_rate=55 + 5 * seed, seed=seed)  # 60-105/min
    signal = sim.signal
    if condition == "noisy":
        rng = np.random.default_rng(100 + seed)
        n = signal.size
        motion, _mask = noise.motion_artifacts(n, FS, amplitude_mv=MOTION_MV, rng=rng,
                                               bursts_per_hour=MOTION_PER_H)
        signal = (signal + noise.baseline_wander(n, FS, amplitude_mv=WANDER_MV, rng=rng)
                  + noise.powerline(n, FS, amplitude_mv=MAINS_MV, rng=rng)
                  + noise.emg(n, FS, amplitude_mv=EMG_MV, rng=rng) + motion)
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


def _best_time(run: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _neurokit() -> tuple[Callable[[npt.NDArray[np.float64]], npt.NDArray[np.int64]],
                         Callable[[npt.NDArray[np.float64]], npt.NDArray[np.int64]]]:
    import neurokit2 as nk

    def peaks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        _signals, info = nk.ecg_peaks(x, sampling_rate=FS)
        return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)

    def clean_peaks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        _signals, info = nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=FS), sampling_rate=FS)
        return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)

    return peaks, clean_peaks


def _scores(hits: int, found: int, truth: int) -> str:
    return f"{100 * hits / truth:.2f} | {100 * hits / max(found, 1):.2f}"


def run() -> str:
    """Measure Se, +P and speed of the detectors on the same records; return a Markdown section."""
    warnings.filterwarnings("ignore")
    import neurokit2 as nk

    nk_peaks, nk_clean_peaks = _neurokit()
    detectors: dict[str, Callable[[npt.NDArray[np.float64]], npt.NDArray[np.int64]]] = {
        "ours": lambda s: detect_r_peaks(s, FS), "nk": nk_peaks, "nk_clean": nk_clean_peaks,
    }
    tolerance = round(TOLERANCE_S * FS)
    rows = []
    totals = dict.fromkeys(detectors, 0.0)
    totals_not_noisy = dict.fromkeys(detectors, 0.0)
    totals_cleaned = 0.0
    for condition in ("clean", "noisy", "af", "ectopic"):
        truth_count = 0
        hits = dict.fromkeys(detectors, 0)
        found = dict.fromkeys(detectors, 0)
        seconds = dict.fromkeys(detectors, 0.0)
        peaks_on_cleaned_s = 0.0
        for seed in SEEDS:
            signal, truth = _records(condition, seed)
            truth_count += truth.size
            for name, detect in detectors.items():
                peaks = detect(signal)
                found[name] += peaks.size
                hits[name] += _match(peaks, truth, tolerance)
                seconds[name] += _best_time(functools.partial(detect, signal))
            # neurokit2's peak step alone, given the input it is documented for (timed like the rest).
            cleaned = np.asarray(nk.ecg_clean(signal, sampling_rate=FS))
            peaks_on_cleaned_s += _best_time(functools.partial(nk_peaks, cleaned))
        totals_cleaned += peaks_on_cleaned_s
        for name in detectors:
            totals[name] += seconds[name]
            if condition != "noisy":
                totals_not_noisy[name] += seconds[name]
        rows.append(
            f"| {condition} | {truth_count} | {_scores(hits['ours'], found['ours'], truth_count)} "
            f"| {_scores(hits['nk'], found['nk'], truth_count)} "
            f"| {_scores(hits['nk_clean'], found['nk_clean'], truth_count)} "
            f"| {1e3 * seconds['ours']:.1f} | {1e3 * seconds['nk']:.1f} | {1e3 * seconds['nk_clean']:.1f} "
            f"| {1e3 * peaks_on_cleaned_s:.1f} | **{seconds['nk'] / seconds['ours']:.1f}x** "
            f"| {peaks_on_cleaned_s / seconds['ours']:.1f}x | {seconds['nk_clean'] / seconds['ours']:.1f}x |"
        )
    record_s = DURATION_S * len(SEEDS) * 4
    return "\n".join([
        "## R-peak detection",
        "",
        f"Simulated lead-II ECG (`simulators.signals.simulate_ecg`), {FS:g} Hz, {len(SEEDS)} records of "
        f"{DURATION_S:g} s per condition (sinus 60-105/min); Se and +P in % at {1e3 * TOLERANCE_S:g} ms "
        f"tolerance against the simulator's R peaks. Noisy: baseline wander {WANDER_MV:g} mV, 50 Hz mains "
        f"{MAINS_MV:g} mV, muscle noise {EMG_MV:g} mV, motion bursts {MOTION_MV:g} mV ({MOTION_PER_H:g}/h, "
        "about 3 s each). AF: atrial "
        "fibrillation throughout (85/min). Ectopic: 8 premature ventricular beats/min. Every detector gets "
        "the same raw records. Ours: `edge.pipeline.ecg.detect_r_peaks`. nk: neurokit2 "
        f"{nk.__version__} `ecg_peaks` (default method), the issue's baseline. nk clean+peaks: `ecg_clean` "
        f"then `ecg_peaks`. Times: best of {REPEATS} runs per record, summed over records, measured the "
        "same way for every detector in this run. `ecg_peaks` on cleaned input: the peak step alone, fed "
        "`ecg_clean`'s output (cleaning not timed).",
        "",
        "| condition | beats | ours Se | ours +P | nk Se | nk +P | nk clean+peaks Se | nk clean+peaks +P "
        "| ours ms | nk ms | nk clean+peaks ms | nk `ecg_peaks` on cleaned input ms | speed-up vs nk `ecg_peaks` "
        "| vs nk `ecg_peaks` on cleaned input | vs nk clean+peaks |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Overall: ours {record_s / totals['ours']:,.0f}x real time, neurokit2 `ecg_peaks` "
        f"{record_s / totals['nk']:,.0f}x, `ecg_clean` + `ecg_peaks` {record_s / totals['nk_clean']:,.0f}x; "
        f"speed-up **{totals['nk'] / totals['ours']:.1f}x** against `ecg_peaks` on the raw records, "
        f"{totals_cleaned / totals['ours']:.1f}x against `ecg_peaks` alone on `ecg_clean`'s output, "
        f"{totals['nk_clean'] / totals['ours']:.1f}x against `ecg_clean` + `ecg_peaks`. On the noisy raw "
        "records `ecg_peaks` gives up early (it finds almost no beat), which makes it fast there: "
        f"without the noisy set the speed-up against `ecg_peaks` is "
        f"**{totals_not_noisy['nk'] / totals_not_noisy['ours']:.1f}x**. Ours finds QRS energy in 10-25 Hz, "
        "above most of the motion; it takes no beat earlier than 0.8 running RR intervals after the last "
        "inside a motion burst (1-8 Hz power of every 0.25 s block in a second several times its running "
        "level), nor an early one far shallower than the beats before it (premature ventricular beats, "
        "wide and shallow in that band, are then found by search-back in the pause after them).",
    ])


if __name__ == "__main__":
    print(run())
