"""Throughput of the whole edge pipeline: one device's hour of ECG, PPG and 1 Hz vitals.

Signals come from :mod:`simulators.signals` (ECG 250 Hz with HRV and 2 PVC/min, the matching PPG
at 100 Hz, SpO2 and heart rate readings at 1 Hz). They are fed in chunks the way a gateway
receives them, with ``flush`` called once per second of signal time; the default chains run
(validate -> lead check -> filter -> derive -> integer grid for waveforms; validate -> spike filter
-> swinging door for vitals). Speed is signal time over CPU time of this one process.
"""

from __future__ import annotations

import time

import numpy as np

from edge.pipeline import Pipeline
from simulators.signals import noise, simulate_ecg, simulate_ppg
from simulators.signals.numerics import simulate_heart_rate, simulate_spo2
from vitals import Stream

DURATION_S = 3600
ECG_FS = 250.0
PPG_FS = 100.0
T0 = 1_700_000_000 * 10**9
SECOND = 10**9


def _signals() -> dict[str, np.ndarray]:
    ecg = simulate_ecg(DURATION_S, ECG_FS, heart_rate=72, pvc_per_min=2, seed=11)
    rng = np.random.default_rng(11)
    n = ecg.signal.size
    raw_ecg = (ecg.signal + noise.baseline_wander(n, ECG_FS, amplitude_mv=0.3, rng=rng)
               + noise.powerline(n, ECG_FS, amplitude_mv=0.05, rng=rng)
               + noise.emg(n, ECG_FS, amplitude_mv=0.02, rng=rng))
    ppg = simulate_ppg(ecg.r_peaks / ECG_FS, DURATION_S, PPG_FS, seed=11, beat_types=ecg.beat_types)
    return {
        "ecg": np.rint(raw_ecg / 0.005) * 0.005,  # a 5 uV ADC step
        "ppg": np.rint(ppg.signal * 1000.0 + 50_000.0),
        "spo2": simulate_spo2(DURATION_S, seed=11).values,
        "heart_rate": simulate_heart_rate(DURATION_S, seed=11).values,
    }


def _run(signals: dict[str, np.ndarray], chunk_s: int) -> tuple[float, float, dict[str, int]]:
    pipeline = Pipeline()
    sent: dict[str, int] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for second in range(0, DURATION_S, chunk_s):
        start = T0 + second * SECOND
        ecg = signals["ecg"][int(second * ECG_FS):int((second + chunk_s) * ECG_FS)]
        ppg = signals["ppg"][int(second * PPG_FS):int((second + chunk_s) * PPG_FS)]
        streams = [
            Stream.regular("ecg", "mV", start, ECG_FS, ecg, scale=0.005),
            Stream.regular("ppg", "1", start, PPG_FS, ppg, scale=1.0),
            Stream.regular("spo2", "%", start, 1.0, signals["spo2"][second:second + chunk_s]),
            Stream.regular("heart_rate", "/min", start, 1.0, signals["heart_rate"][second:second + chunk_s]),
        ]
        for stream in streams:
            for out in pipeline.process(stream):
                sent[out.metric] = sent.get(out.metric, 0) + len(out)
        for out in pipeline.flush(start + chunk_s * SECOND):
            sent[out.metric] = sent.get(out.metric, 0) + len(out)
    for out in pipeline.flush(T0 + DURATION_S * SECOND, final=True):
        sent[out.metric] = sent.get(out.metric, 0) + len(out)
    return time.perf_counter() - wall, time.process_time() - cpu, sent


def run() -> str:
    """Measure the pipeline's speed in x real time; return a Markdown section."""
    signals = _signals()
    samples = sum(int(v.size) for v in signals.values())
    rows = []
    sent: dict[str, int] = {}
    for chunk_s in (1, 10):
        wall, cpu, sent = _run(signals, chunk_s)
        rows.append(f"| {chunk_s} s | {DURATION_S / cpu:,.0f}x | {DURATION_S / wall:,.0f}x "
                    f"| {samples / cpu / 1e6:.2f} M |")
    sent_text = ", ".join(f"{metric} {count:,}" for metric, count in sorted(sent.items()))
    return "\n".join([
        "## Pipeline throughput",
        "",
        f"One device, {DURATION_S / 3600:g} h of simulated signals (`simulators.signals`): ECG {ECG_FS:g} Hz "
        f"(72/min, 2 PVC/min, wander, mains and muscle noise, 5 uV steps), PPG {PPG_FS:g} Hz, SpO2 and heart "
        f"rate at 1 Hz: {samples:,} samples. Default chains, `flush` once per chunk. Goal: >= 1000x real "
        "time per core.",
        "",
        "| chunk | x real time (CPU time) | x real time (wall) | samples/s per core |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Streams sent (10 s chunks): {sent_text} values.",
    ])


if __name__ == "__main__":
    print(run())
