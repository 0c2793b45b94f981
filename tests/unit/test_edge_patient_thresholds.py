"""The gateway's keeper of the cloud's patient thresholds: refuse bad ones, keep and save good ones."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.patient_thresholds import PatientThresholdStore, thresholds_path
from vitals.patient_thresholds import build_threshold_config

GOOD = build_threshold_config({"patient-1": {"spo2": [92]}}, revision=1)
NEWER = build_threshold_config({"patient-1": {"spo2": [90, 94]}}, revision=2)


def test_the_file_lives_beside_the_spool() -> None:
    assert thresholds_path("/var/lib/vb/spool.db") == Path("/var/lib/vb/spool.db.thresholds.json")
    assert thresholds_path(":memory:") is None


def test_good_messages_replace_each_other_and_a_repeat_changes_nothing(tmp_path: Path) -> None:
    store = PatientThresholdStore(tmp_path / "t.json")
    first = store.accept(GOOD)
    assert first is not None and first.levels_for("patient-1") == {"spo2": (92.0,)}
    assert store.accept(GOOD) is None  # the retained message again after a reconnect
    second = store.accept(NEWER)
    assert second is not None and store.config == second and store.accepted == 2


def test_a_bad_message_is_one_logged_line_counted_and_the_previous_thresholds_stay(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = PatientThresholdStore(tmp_path / "t.json")
    store.accept(GOOD)
    with caplog.at_level(logging.ERROR):
        assert store.accept(b'{"v": 1, "revision": 2, "patients": {"patient-1": {"spo2": [400]}}}') is None
        assert store.accept(b"\xff") is None
    assert store.rejected == 2 and store.config is not None and store.config.revision == 1
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("\n" not in m and "keeping revision 1" in m for m in messages)
    assert "level 400 lies outside the plausible range" in messages[0]


def test_saved_thresholds_are_read_back_and_a_damaged_file_is_ignored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.json"
    store = PatientThresholdStore(path)
    store.accept(NEWER)
    store.save()
    assert path.read_bytes() == NEWER and not list(tmp_path.glob("*.partial"))
    again = PatientThresholdStore(path)
    assert again.load() == store.config and again.accept(NEWER) is None
    path.write_bytes(b'{"v": 1')
    with caplog.at_level(logging.ERROR):
        assert PatientThresholdStore(path).load() is None
    assert "ignoring the saved patient thresholds" in caplog.text
    assert PatientThresholdStore(tmp_path / "absent.json").load() is None
    assert PatientThresholdStore(None).load() is None
