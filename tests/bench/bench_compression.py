"""Compression: the lossless waveform codec against general-purpose compressors, and slow vitals.

Waveforms: one hour of simulated ECG (250 Hz) and PPG (100 Hz) from :mod:`simulators.signals`,
quantised as a device would (ECG 5 uV steps, about 12 bits over +-10 mV; PPG integer counts), sent in
10 s blocks. Compared on the same integer samples: raw int16 (or int32 where needed), zlib level
9 and zstd level 19 on the raw little-endian samples, gzip'd JSON (a list of numbers), and the wire
codec (``dz``: prediction + block-adaptive Rice coding, :mod:`vitals._waveform`). Slow vitals: one
day of 1 Hz SpO2 and heart rate and a week of 10-minute temperature readings through the default
``swinging_door`` stage; points kept, and the largest error of linear interpolation between them.
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
from simulators.signals import noise, simulate_ecg, simulate_ppg
from simulators.signals.numerics import simulate_body_temperature, simulate_heart_rate, simulate_spo2
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


def _vital_rows() -> list[str]:
    spo2 = simulate_spo2(86400, seed=21)
    heart_rate = simulate_heart_rate(86400, seed=21)
    resting = simulate_heart_rate(86400, heart_rate=62, heart_rate_std=0.5, seed=22)
    series = [
        ("spo2", "defaults", spo2, {}),
        ("spo2", "deviation 2", spo2, {"deviation": 2.0}),
        ("heart_rate", "defaults", heart_rate, {}),
        ("heart_rate", "resting (HRV sd 0.5/min)", resting, {}),
        ("heart_rate", "deviation 3", heart_rate, {"deviation": 3.0}),
        ("body_temperature", "defaults (10 min readings)", simulate_body_temperature(7 * 86400, seed=21), {}),
    ]
    rows = []
    for metric, label, sim, options in series:
        chain = StreamPipeline.for_metric(metric, {"stages": ["swinging_door"], **options})
        times = T0 + np.rint(np.asarray(sim.times_s) * 1e9).astype(np.int64)
        values = np.asarray(sim.values, dtype=np.float64)
        kept: list[Stream] = []
        for i in range(0, values.size, 600):
            kept += chain.process(Stream(metric, CATALOGUE[metric].unit, times[i:i + 600], values[i:i + 600],
                                         np.zeros(min(600, values.size - i), dtype=np.uint8)))
        kept += chain.flush(int(times[-1]), final=True)
        kept_times = np.concatenate([s.times_ns for s in kept])
        kept_values = np.concatenate([s.values for s in kept])
        error = float(np.max(np.abs(reconstruct(kept_times, kept_values, times) - values)))
        resolution = CATALOGUE[metric].resolution
        reduction = values.size / kept_values.size
        rows.append(f"| {metric} | {label} | {values.size:,} | {kept_values.size:,} | {reduction:.1f}x "
                    f"| {error:g} | {resolution:g} |")
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
        "Slow vitals (`simulators.signals.numerics`, 1 Hz for a day; temperature every 10 min for a week) "
        "through `swinging_door`: defaults are deviation = catalogue resolution, no deadband, heartbeat 300 s, "
        "clinical thresholds kept exactly. The simulated readings carry measurement noise of 0.5-1 resolution "
        "steps, which bounds what any error-bounded compressor can drop. Goal: >= 10x fewer points on stable "
        "vitals with the error within the resolution.",
        "",
        "| metric | settings | points in | points kept | reduction | largest error | resolution |",
        "|---|---|---|---|---|---|---|",
        *_vital_rows(),
    ])


if __name__ == "__main__":
    print(run())
