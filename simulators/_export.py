"""Write a scenario run to files: CSV, or WFDB records (header, format-16 signal, MIT annotations).

WFDB is written here directly: a ``.hea`` text header, a ``.dat`` file of little-endian 16-bit
samples, and for ECG an ``.atr`` annotation file in the MIT format (16-bit words: 6-bit code, 10-bit
sample gap; SKIP for longer gaps; AUX for rhythm labels). Beats map to 'N' and 'V'; AF-conducted
beats are 'N' inside '(AFIB' rhythm annotations, as in the MIT-BIH AF database. Numerics and the
ground-truth windows go to CSV in both formats.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simulators.scenarios import Chunk, Scenario
from simulators.signals.events import Event

__all__ = ["export_scenario", "mit_annotations", "write_wfdb_record"]

DEFAULT_START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
_GAIN = {"ecg": (1000.0, "mV"), "ppg": (5000.0, "NU")}
_CODE = {"N": 1, "V": 5, "+": 28}
_SKIP, _AUX = 59, 63


def write_wfdb_record(
    directory: Path,
    record: str,
    values: npt.NDArray[np.float64],
    fs: float,
    *,
    gain: float,
    units: str,
    description: str,
    start: dt.datetime | None = None,
) -> list[Path]:
    """Write a one-signal WFDB record (format 16) ``record.hea`` + ``record.dat`` in ``directory``.

    Samples are ``round(value * gain)`` (``gain`` ADC units per ``units``), clipped to +-32767.
    """
    digital = np.clip(np.rint(np.asarray(values, dtype=np.float64) * gain), -32767, 32767).astype("<i2")
    dat = directory / f"{record}.dat"
    dat.write_bytes(digital.tobytes())
    checksum = int(np.sum(digital.astype(np.int64)) % 65536)
    checksum = checksum - 65536 if checksum >= 32768 else checksum  # WFDB keeps it as a signed short
    first = int(digital[0]) if len(digital) else 0
    when = f" {start:%H:%M:%S %d/%m/%Y}" if start is not None else ""
    fs_text = f"{fs:g}"
    lines = [
        f"{record} 1 {fs_text} {len(digital)}{when}",
        f"{record}.dat 16 {gain:g}/{units} 16 0 {first} {checksum} 0 {description}",
    ]
    hea = directory / f"{record}.hea"
    hea.write_text("\n".join(lines) + "\n", encoding="ascii")
    return [hea, dat]


def mit_annotations(samples: npt.NDArray[np.int64], codes: list[str], aux: list[str]) -> bytes:
    """Encode annotations (sample numbers ascending, codes 'N'/'V'/'+', aux text or '') in MIT format."""
    words = bytearray()
    previous = 0
    for sample, code, note in zip(samples.tolist(), codes, aux, strict=True):
        gap = sample - previous
        previous = sample
        if gap > 1023:
            words += (_SKIP << 10).to_bytes(2, "little")
            words += ((gap >> 16) & 0xFFFF).to_bytes(2, "little") + (gap & 0xFFFF).to_bytes(2, "little")
            gap = 0
        words += ((_CODE[code] << 10) | gap).to_bytes(2, "little")
        if note:
            text = note.encode("ascii")
            words += ((_AUX << 10) | len(text)).to_bytes(2, "little")
            words += text + (b"\0" if len(text) % 2 else b"")
    words += b"\0\0"
    return bytes(words)


def _beat_annotations(r_samples: npt.NDArray[np.int64], types: npt.NDArray[np.str_]) -> bytes:
    samples: list[int] = []
    codes: list[str] = []
    aux: list[str] = []
    rhythm = ""
    for sample, kind in zip(r_samples.tolist(), types.tolist(), strict=True):
        now = "(AFIB" if kind == "A" else ("(N" if kind == "N" else rhythm)
        if now != rhythm and now:
            samples.append(sample)
            codes.append("+")
            aux.append(now)
            rhythm = now
        samples.append(sample)
        codes.append("V" if kind == "V" else "N")
        aux.append("")
    return mit_annotations(np.asarray(samples, dtype=np.int64), codes, aux)


def _write_numerics(directory: Path, chunk: Chunk, start_ns: int) -> Path:
    path = directory / "numerics.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time_ns", "seconds_from_start", "metric", "value"])
        for metric, (times_ns, values) in chunk.numerics.items():
            for time_ns, value in zip(times_ns.tolist(), values.tolist(), strict=True):
                writer.writerow([time_ns, f"{(time_ns - start_ns) / 1e9:.3f}", metric, f"{value:g}"])
    return path


def _write_events(directory: Path, events: Sequence[Event]) -> Path:
    path = directory / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "start_s", "end_s"])
        for kind, start_s, end_s in events:
            writer.writerow([kind, f"{start_s:.3f}", f"{end_s:.3f}"])
    return path


def export_scenario(
    scenario: Scenario,
    out_dir: Path,
    *,
    fmt: str,
    hours: float | None = None,
    waveform_minutes: float = 5.0,
    seed: int = 0,
    start_ns: int = DEFAULT_START_NS,
) -> list[Path]:
    """Export ``hours`` (default: all) of numerics and the first ``waveform_minutes`` of waveforms.

    ``fmt`` is "csv" or "wfdb". Returns the files written.
    """
    if fmt not in ("csv", "wfdb"):
        raise ValueError(f"format must be 'csv' or 'wfdb', not {fmt!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    span_s = scenario.duration_s if hours is None else hours * 3600.0
    run = scenario.start(start_ns, seed)
    numerics = run.advance(span_s)
    written = [_write_numerics(out_dir, numerics, start_ns), _write_events(out_dir, run.ground_truth())]
    wave_s = min(waveform_minutes * 60.0, span_s)
    if wave_s <= 0 or not any(m in scenario.metrics for m in _GAIN):
        return written
    wave_chunk = scenario.start(start_ns, seed).advance(wave_s, waveforms=True)
    start = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC)
    for metric, (first_ns, fs, values) in wave_chunk.waveforms.items():
        record = f"{scenario.name}_{metric}"
        if fmt == "csv":
            path = out_dir / f"{record}.csv"
            times = (first_ns - start_ns) / 1e9 + np.arange(len(values)) / fs
            np.savetxt(path, np.column_stack([times, values]), delimiter=",", fmt=["%.4f", "%.5f"],
                       header="seconds_from_start,value", comments="")
            written.append(path)
        else:
            gain, units = _GAIN[metric]
            written += write_wfdb_record(out_dir, record, values, fs, gain=gain, units=units,
                                         description=metric.upper(), start=start)
        if metric == "ecg":
            r_samples = np.rint((wave_chunk.r_peaks_ns - first_ns) / 1e9 * fs).astype(np.int64)
            if fmt == "wfdb":
                path = out_dir / f"{record}.atr"
                path.write_bytes(_beat_annotations(r_samples, wave_chunk.beat_types))
            else:
                path = out_dir / f"{record}_beats.csv"
                with path.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["sample", "seconds_from_start", "type"])
                    for sample, kind in zip(r_samples.tolist(), wave_chunk.beat_types.tolist(), strict=True):
                        writer.writerow([sample, f"{sample / fs:.4f}", kind])
            written.append(path)
    return written
