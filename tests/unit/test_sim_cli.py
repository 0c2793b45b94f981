"""`vitalbridge sim list|plot|export` and the WFDB writer (read back with the wfdb package)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from simulators._export import mit_annotations
from vitalbridge.cli import main


def test_sim_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("copd_deteriorating ") for line in lines)
    assert all(len(line.split(None, 1)) == 2 for line in lines)


def test_sim_plot_writes_small_png(tmp_path: Path) -> None:
    out = tmp_path / "af.png"
    assert main(["sim", "plot", "af_deteriorating", "--out", str(out), "--hours", "2"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 300_000


def test_sim_unknown_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "export", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err


def test_sim_export_csv(tmp_path: Path) -> None:
    assert main(["sim", "export", "heart_failure_stable", "--format", "csv", "--out", str(tmp_path),
                 "--hours", "1", "--waveform-minutes", "0.5"]) == 0
    with (tmp_path / "numerics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["metric"] for row in rows} == {"heart_rate", "spo2", "pulse_rate"}
    ecg = np.loadtxt(tmp_path / "heart_failure_stable_ecg.csv", delimiter=",", skiprows=1)
    assert ecg.shape == (30 * 250, 2)
    with (tmp_path / "heart_failure_stable_ecg_beats.csv").open() as handle:
        beats = list(csv.DictReader(handle))
    assert 20 < len(beats) < 60


# The wfdb reader itself trips deprecation warnings of newer pandas; they are not ours to fix.
@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_sim_export_wfdb_reads_back(tmp_path: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    assert main(["sim", "export", "af_deteriorating", "--format", "wfdb", "--out", str(tmp_path),
                 "--hours", "0.1", "--waveform-minutes", "3"]) == 0
    record = wfdb.rdrecord(str(tmp_path / "af_deteriorating_ecg"))
    assert record.fs == 250
    assert record.sig_len == 3 * 60 * 250
    assert record.units == ["mV"]
    assert record.fmt == ["16"]
    assert 0.5 < float(np.max(record.p_signal)) < 3.0
    ann = wfdb.rdann(str(tmp_path / "af_deteriorating_ecg"), "atr")
    assert set(ann.symbol) <= {"N", "V", "+"}
    rhythms = [note for symbol, note in zip(ann.symbol, ann.aux_note, strict=True) if symbol == "+"]
    assert rhythms[:3] == ["(N", "(AFIB", "(N"]
    beats = ann.sample[np.array(ann.symbol) != "+"]
    # Each beat annotation sits on the ECG's local maximum (clean at R, noise is small).
    signal = record.p_signal[:, 0]
    near_max = [abs(int(np.argmax(signal[max(s - 10, 0) : s + 11])) - min(s, 10)) <= 2 for s in beats]
    assert np.mean(near_max) > 0.95
    ppg = wfdb.rdrecord(str(tmp_path / "af_deteriorating_ppg"))
    assert ppg.fs == 75


def test_mit_annotations_bytes() -> None:
    encoded = mit_annotations(np.array([5, 2000], dtype=np.int64), ["+", "V"], ["(N", ""])
    assert encoded == (
        (28 << 10 | 5).to_bytes(2, "little") + (63 << 10 | 2).to_bytes(2, "little") + b"(N"
        + (59 << 10).to_bytes(2, "little") + (0).to_bytes(2, "little") + (1995).to_bytes(2, "little")
        + (5 << 10).to_bytes(2, "little") + b"\0\0"
    )
