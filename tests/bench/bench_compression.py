"""Compression: the lossless waveform codec against general-purpose compressors, and slow vitals.

Waveforms: one hour of simulated ECG (250 Hz) and PPG (100 Hz) from :mod:`simulators.signals`,
quantised as a device would (ECG 5 uV steps, about 12 bits over +-10 mV; PPG integer counts), sent in
10 s blocks. Compared on the same integer samples: raw int16 (or int32 where needed), zlib level
9 and zstd level 19 on the raw little-endian samples, gzip'd JSON (a list of numbers), and the wire
codec (``dz``: prediction + block-adaptive Rice coding, :mod:`vitals._waveform`). Slow vitals: the
library's stable scenarios as the simulator produces them (a day of 1 Hz SpO2, heart and pulse rate,
a week of respiratory rate and temperature), each through the compressor alone without smoothing and
through the default chain; then three ``simulators.signals.numerics`` series. Points kept, and the
largest error of linear interpolation between them against every raw reading that went in.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib

import numpy as np
import numpy.typing as npt

from edge.pipeline import StreamPipeline
from edge.pipeline.compression import reconstruct
from simulators.scenarios.model import load_scenario
from simulators.signals import noise, simulate_ecg, simulate_ppg
from simulators.signals.numerics import NumericSeries, simulate_body_temperature, simulate_heart_rate, simulate_spo2
from vitals import CATALOGUE, Stream
from vitals._waveform import decode_counts, encode_counts

BLOCK_S = 10
T0 = 1_700_000_000 * 10**9


def _waveforms() -> dict[str, tuple[npt.NDArray[np.int64], float]]:
    fs = 250.0
    ecg = simulate_ecg(3600, fs, heart_rate=72, pvc_per_min=1, seed=21)
    rng = np.random.default_rng(21)
    n = ecg.signal.size
    raw = (ecg.signal + noise.baseline_wander(n, fs, amplitude_mv=0.3, rng=rng)
           + noise.powerline(n, fs, amplitude_mv=0.03, rng=rng) + noise.emg(n, fs, amplitude_mv=0.02, rng=rng))
    # What the pipeline sends by default: the ECG after ecg_filter, on the same 5 uV grid.
    chain = StreamPipeline.for_metric("ecg", {"stages": ["ecg_filter", "waveform_counts"], "scale": 0.005})
    (sent,) = chain.process(Stream.regular("ecg", "mV", T0, fs, raw))
    ppg = simulate_ppg(ecg.r_peaks / fs, 3600, 100.0, seed=21)
    ppg_counts = np.rint(ppg.signal * 2000.0 + 120_000.0 + rng.normal(0, 3.0, ppg.signal.size)).astype(np.int64)
    return {
        "ECG 250 Hz, 5 uV steps, raw": (np.rint(raw / 0.005).astype(np.int64), fs),
        "ECG as sent (0.5-40 Hz, 50 Hz notch)": (np.rint(sent.values / 0.005).astype(np.int64), fs),
        "PPG 100 Hz, ADC counts": (ppg_counts, 100.0),
    }


def _blocks(counts: npt.NDArray[np.int64], fs: float) -> list[npt.NDArray[np.int64]]:
    size = int(BLOCK_S * fs)
    return [counts[i:i + size] for i in range(0, counts.size, size)]


def _waveform_rows() -> list[str]:
    import zstandard

    zstd = zstandard.ZstdCompressor(level=19)
    rows = []
    for name, (counts, fs) in _waveforms().items():
        blocks = _blocks(counts, fs)
        width = "<i2" if np.abs(counts).max() < 2**15 else "<i4"
        raw = sum(b.size * 2 for b in blocks)  # the int16 baseline, whatever the width needed
        raw_blocks = [b.astype(width).tobytes() for b in blocks]
        started = time.perf_counter()
        ours_blocks = [encode_counts(b) for b in blocks]
        encode_s = time.perf_counter() - started
        started = time.perf_counter()
        for data, block in zip(ours_blocks, blocks, strict=True):
            assert np.array_equal(decode_counts(data, block.size), block)
        decode_s = time.perf_counter() - started
        sizes = {
            "dz (ours)": sum(len(d) for d in ours_blocks),
            f"zstd-19 on raw {width[1:]}": sum(len(zstd.compress(r)) for r in raw_blocks),
            f"zlib-9 on raw {width[1:]}": sum(len(zlib.compress(r, 9)) for r in raw_blocks),
            "gzip'd JSON": sum(len(gzip.compress(json.dumps(b.tolist()).encode(), 9)) for b in blocks),
        }
        seconds = counts.size / fs
        for codec, size in sizes.items():
            note = (f"encode {seconds / encode_s:,.0f}x, decode {seconds / decode_s:,.0f}x real time"
                    if codec.startswith("dz") else "")
            rows.append(f"| {name} | {codec} | {size:,} | {raw / size:.2f}x | {8 * size / counts.size:.2f} | {note} |")
    return rows


def _compress(metric: str, times: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
              options: dict[str, object]) -> tuple[int, float]:
    """Feed 10-minute chunks through one metric's chain; return (points kept, largest error vs raw)."""
    chain = StreamPipeline.for_metric(metric, options)
    kept: list[Stream] = []
    step = 600
    for i in range(0, values.size, step):
        part = slice(i, i + step)
        kept += chain.process(Stream(metric, CATALOGUE[metric].unit, times[part], values[part],
                                     np.zeros(values[part].size, dtype=np.uint8)))
        kept += chain.flush(int(times[part][-1]))
    kept += chain.flush(int(times[-1]), final=True)
    kept_times = np.concatenate([s.times_ns for s in kept])
    kept_values = np.concatenate([s.values for s in kept])
    error = float(np.max(np.abs(reconstruct(kept_times, kept_values, times) - values)))
    return kept_values.size, error


def _scenario_series(name: str, days: float) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """One run of a library scenario: each numeric metric's readings in time order, duplicates dropped."""
    chunk = load_scenario(name).start(T0, seed=21).advance(days * 86400.0, waveforms=False)
    series = {}
    for metric, (times, values) in chunk.numerics.items():
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        first = np.concatenate(([True], np.diff(times) > 0))  # a duplicated reading, sent twice
        series[metric] = (times[first], values[first])
    return series


# (scenario, metric, days): the stable scenarios' slow vitals, as the simulator produces them.
STABLE = (
    ("copd_stable", "spo2", 1.0), ("heart_failure_stable", "spo2", 1.0), ("af_stable", "spo2", 1.0),
    ("copd_stable", "heart_rate", 1.0), ("copd_stable", "pulse_rate", 1.0),
    ("heart_failure_stable", "pulse_rate", 1.0), ("heart_failure_stable", "heart_rate", 1.0),
    ("copd_stable", "respiratory_rate", 7.0), ("copd_stable", "body_temperature", 7.0),
)
# Chains compared on the same readings: the compressor alone without smoothing (as before the
# smoothing option existed), and the default chain the gateway runs (validate, spike_filter where
# the metric has it, swinging_door with its defaults).
CHAINS: tuple[tuple[str, dict[str, object]], ...] = (
    ("swinging_door, no smoothing", {"stages": ["swinging_door"], "smooth_half_window": 0}),
    ("default chain", {}),
)


def _vital_rows() -> list[str]:
    rows = []
    cache: dict[tuple[str, float], dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = {}
    for scenario, metric, days in STABLE:
        series = cache.setdefault((scenario, days), _scenario_series(scenario, days))
        times, values = series[metric]
        for label, options in CHAINS:
            kept, error = _compress(metric, times, values, options)
            resolution = CATALOGUE[metric].resolution
            rows.append(f"| {scenario} | {metric} | {days:g} d | {label} | {values.size:,} | {kept:,} "
                        f"| {values.size / kept:.1f}x | {error:.3g} | {resolution:g} |")
    spo2 = simulate_spo2(86400, seed=21)
    heart_rate = simulate_heart_rate(86400, seed=21)
    temperature = simulate_body_temperature(7 * 86400, seed=21)
    extra: tuple[tuple[str, str, NumericSeries, dict[str, object]], ...] = (
        ("spo2", "default chain, deviation 2", spo2, {"deviation": 2.0}),
        ("heart_rate", "default chain, deviation 3", heart_rate, {"deviation": 3.0}),
        ("body_temperature", "default chain (10 min readings)", temperature, {}),
    )
    for metric, label, sim, options in extra:
        times = T0 + np.rint(np.asarray(sim.times_s) * 1e9).astype(np.int64)
        values = np.asarray(sim.values, dtype=np.float64)
        kept, error = _compress(metric, times, values, options)
        rows.append(f"| `simulate_{metric}` | {metric} | {(times[-1] - times[0]) / 86.4e12:.0f} d "
                    f"| {label} | {values.size:,} | {kept:,} | {values.size / kept:.1f}x | {error:.3g} "
                    f"| {CATALOGUE[metric].resolution:g} |")
    return rows


def run() -> str:
    """Measure waveform and slow-vital compression; return a Markdown section."""
    return "\n".join([
        "## Compression",
        "",
        f"Waveforms: 1 h simulated (`simulators.signals`), {BLOCK_S} s blocks, lossless (every block decoded "
        "and compared). Ratio is against raw int16 (2 bytes/sample). Goal: >= 3x against int16 and better than "
        "zstd and zlib on the raw samples.",
        "",
        "| signal | codec | bytes | ratio vs int16 | bits/sample | speed |",
        "|---|---|---|---|---|---|",
        *_waveform_rows(),
        "",
        "Slow vitals: the library's stable scenarios as the simulator produces them (seed 21; 1 Hz monitors "
        "for a day, respiratory rate and temperature for a week), then three `simulators.signals.numerics` "
        "series. Each reading carries white measurement noise of 0.5-1 resolution steps, drawn anew every "
        "second, so a stable SpO2 flickers between neighbouring integers. Defaults: deviation = catalogue "
        "resolution, no deadband, heartbeat 300 s, clinical thresholds kept exactly, and for spo2, heart_rate "
        "and pulse_rate `smooth_half_window` 2 (segments may end on the median of 5 readings; the door is "
        "still tested against every raw reading). Largest error: linear interpolation of the points kept "
        "against every raw reading that went in (spikes the spike filter replaced included). Goal: >= 10x "
        "fewer points on stable vitals with the error within the resolution.",
        "",
        "| source | metric | span | chain | points in | points kept | reduction | largest error vs raw "
        "| resolution |",
        "|---|---|---|---|---|---|---|---|---|",
        *_vital_rows(),
    ])


if __name__ == "__main__":
    print(run())
