"""ECG generation speed: simulators.signals.ecg.simulate_ecg vs neurokit2's ECGSYN, same run."""

from __future__ import annotations

import time
import warnings

from simulators.signals.ecg import simulate_ecg

DURATION_S = 300.0
HEART_RATE = 70.0
RATES_HZ = (250, 500)


def _best_of(repeats: int, func: object) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def run() -> str:
    """Time 5 min of ECG at 250 and 500 Hz with both generators; return a Markdown section."""
    try:
        import neurokit2 as nk
    except ImportError:
        nk = None
    rows = []
    for fs in RATES_HZ:
        ours = _best_of(5, lambda fs=fs: simulate_ecg(DURATION_S, fs, heart_rate=HEART_RATE, seed=1))
        if nk is None:
            rows.append(f"| {fs} | {ours:.3f} | n/a | n/a |")
            continue

        def baseline(fs: int = fs) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nk.ecg_simulate(duration=int(DURATION_S), sampling_rate=fs, heart_rate=HEART_RATE,
                                method="ecgsyn", random_state=1)

        theirs = _best_of(1, baseline)
        rows.append(f"| {fs} | {ours:.3f} | {theirs:.2f} | {theirs / ours:.0f}x |")
    version = getattr(nk, "__version__", "not installed") if nk is not None else "not installed"
    return "\n".join([
        "## ECG simulation speed",
        "",
        f"{DURATION_S / 60:.0f} min of ECG at {HEART_RATE:.0f} /min, seconds of wall time (ours: best of 5;",
        f"neurokit2 {version} `ecg_simulate(method=\"ecgsyn\")`: one run). Goal: at least 20x faster.",
        "",
        "| fs (Hz) | simulate_ecg (s) | neurokit2 ECGSYN (s) | speed-up |",
        "|---:|---:|---:|---:|",
        *rows,
    ])
