"""Scenario loader, the shipped library, and runs: chunked == one pass, ground truth, speed."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from simulators.scenarios import Chunk, ScenarioError, list_scenarios, load_scenario, parse_scenario
from simulators.signals import Event

START_NS = 1_704_067_200_000_000_000

MINIMAL: dict[str, Any] = {
    "name": "tiny",
    "description": "a tiny scenario",
    "duration": "2h",
    "patient": {"id": "p-1", "age": 60, "conditions": ["copd"]},
    "devices": [{"id": "ox", "kind": "pulse_oximeter", "profile": "generic.pulse_oximeter",
                 "metrics": ["spo2", "pulse_rate"]}],
    "timeline": [{"type": "hypoxia", "start": "30min", "duration": "1h", "magnitude": 8, "ramp": "10min"}],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


def test_minimal_scenario_parses() -> None:
    scenario = parse_scenario(MINIMAL)
    assert scenario.duration_s == 7200.0
    assert scenario.timeline[0].start_s == 1800.0
    assert scenario.timeline[0].ramp_s == 600.0
    assert scenario.metrics == ("spo2", "pulse_rate")
    assert scenario.baseline["spo2"] == 97.0


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("patient.age", "old", "patient.age: expected a number"),
        ("patient.id", KeyError, "patient.id: missing required field"),
        ("patient.conditions", ["gout"],
         "patient.conditions[0]: expected one of: hypertension, heart_failure, copd, diabetes, af, not 'gout'"),
        ("devices.0.metrics", ["spo2", "mood"],
         "devices[0].metrics[1]: expected one of: heart_rate, pulse_rate, spo2,"),
        ("devices.0.interval", "soon", "devices[0].interval: expected a duration"),
        ("devices.0.schedule", ["25:00"], "devices[0].schedule[0]: expected a time of day"),
        ("devices.0.imperfections", {"late_prob": 2},
         "devices[0].imperfections.late_prob: expected a number at most 1, not 2"),
        ("devices.0.colour", "red", "devices[0].colour: unknown field"),
        ("timeline.0.type", "earthquake", "timeline[0].type: expected one of: af, tachycardia,"),
        ("timeline.0.duration", "-3h", "timeline[0].duration: expected a duration"),
        ("timeline.0.device", "ghost", "timeline[0].device: no device with id 'ghost'"),
        ("timeline.0.magnitud", 3, "timeline[0].magnitud: unknown field"),
        ("baseline", {"spo2": 120}, "baseline.spo2: expected a number at most 100, not 120"),
        ("baseline", {"heart_rat": 60}, "baseline.heart_rat: unknown field"),
        ("description", KeyError, "tiny.yaml: description: missing required field"),
    ],
)
def test_loader_errors_name_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_with(path, value), "tiny.yaml")
    assert str(info.value).startswith("tiny.yaml: ")
    assert message in str(info.value)


def test_duplicate_metric_across_devices_is_an_error() -> None:
    data = _with("devices", MINIMAL["devices"] * 2)
    data["devices"][1] = dict(data["devices"][1], id="ox2")
    with pytest.raises(ScenarioError, match=r"devices\[1\]\.metrics: 'spo2' is already reported by device 'ox'"):
        parse_scenario(data)


def test_load_from_file_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    assert load_scenario(path).name == "tiny"
    with pytest.raises(ScenarioError, match="unknown scenario 'no_such'; library scenarios: "):
        load_scenario("no_such")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ScenarioError, match=r"^bad\.yaml:1: not valid YAML: expected ',' or ']'"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.yaml")


def test_library_has_stable_and_deteriorating_for_each_condition() -> None:
    names = set(list_scenarios())
    for condition in ("hypertension", "heart_failure", "copd", "diabetes", "af"):
        for state in ("stable", "deteriorating"):
            name = f"{condition}_{state}"
            assert name in names
            assert condition in load_scenario(name).patient.conditions


@pytest.mark.parametrize("name", list_scenarios())
def test_every_library_scenario_loads_and_runs(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    run = scenario.start(START_NS, seed=1)
    chunk = run.advance(3600.0)
    assert set(chunk.numerics) <= set(scenario.metrics)
    for metric, (times_ns, values) in chunk.numerics.items():
        assert times_ns.dtype == np.int64 and values.dtype == np.float64, metric
        assert np.all(np.isfinite(values)), metric
    waves = run.advance(5.0, waveforms=True)
    for metric in ("ecg", "ppg"):
        if metric in scenario.metrics:
            first_ns, fs, values = waves.waveforms[metric]
            assert len(values) == round(5.0 * fs)
            assert first_ns == START_NS + 3600 * 10**9
            assert np.all(np.isfinite(values))


def _concat(chunks: list[Chunk]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for metric in chunks[0].numerics:
        out[metric] = (np.concatenate([c.numerics[metric][0] for c in chunks]),
                       np.concatenate([c.numerics[metric][1] for c in chunks]))
    return out


@pytest.mark.parametrize("name", ["copd_deteriorating", "heart_failure_deteriorating", "diabetes_stable"])
def test_chunked_numerics_equal_one_pass(name: str) -> None:
    scenario = load_scenario(name)
    whole = scenario.start(START_NS, seed=9).advance(6 * 3600.0 + 17.0)
    run = scenario.start(START_NS, seed=9)
    sizes = [0.5, 7.25, 3600.0, 1.0, 4000.0, 6 * 3600.0 + 17.0 - 7608.75]
    parts = _concat([run.advance(size) for size in sizes])
    assert set(parts) == set(whole.numerics)
    for metric, (times_ns, values) in whole.numerics.items():
        assert np.array_equal(parts[metric][0], times_ns), metric
        assert np.array_equal(parts[metric][1], values), metric


def test_chunked_waveforms_are_continuous() -> None:
    scenario = load_scenario("af_deteriorating")
    whole = scenario.start(START_NS, seed=3).advance(60.0, waveforms=True)
    run = scenario.start(START_NS, seed=3, waveforms=True)
    chunks = [run.advance(size) for size in (12.3, 0.01, 20.0, 27.69)]
    for metric in ("ecg", "ppg"):
        first_ns, _fs, values = whole.waveforms[metric]
        joined = np.concatenate([c.waveforms[metric][2] for c in chunks])
        assert chunks[0].waveforms[metric][0] == first_ns
        assert np.allclose(joined, values, atol=1e-9), metric
        for previous, nxt in itertools.pairwise(chunks):
            p_first, p_fs, p_values = previous.waveforms[metric]
            assert nxt.waveforms[metric][0] == pytest.approx(p_first + len(p_values) * 1e9 / p_fs, abs=1)
    joined_peaks = np.concatenate([c.r_peaks_ns for c in chunks])
    assert np.array_equal(joined_peaks, whole.r_peaks_ns)
    assert "A" in whole.beat_types.tolist() and "N" in whole.beat_types.tolist()


def test_copd_deteriorating_slides_into_sustained_hypoxia() -> None:
    run = load_scenario("copd_deteriorating").start(START_NS, seed=0)
    chunk = run.advance(7 * 86400.0)
    times_ns, spo2 = chunk.numerics["spo2"]
    days = (times_ns - START_NS) / 86400e9
    first_day = spo2[days < 0.9]
    assert 94.0 <= np.median(first_day) <= 96.0
    late = spo2[(days > 3.5) & (days < 7.0)]
    assert np.percentile(late, 99) < 88.0
    kinds = {e.kind for e in run.ground_truth()}
    assert {"hypoxia", "fever", "tachypnoea"} <= kinds
    hypoxia = next(e for e in run.ground_truth() if e.kind == "hypoxia")
    assert hypoxia == Event("hypoxia", 86400.0, 7 * 86400.0)  # ongoing: ends at the present


def test_ground_truth_grows_with_time_and_r_peaks_match_ecg() -> None:
    scenario = load_scenario("af_deteriorating")
    run = scenario.start(START_NS, seed=2)
    run.advance(20.0)
    assert [e.kind for e in run.ground_truth()] == ["motion"]
    chunk = run.advance(100.0, waveforms=True)
    assert ("af", 30.0, 120.0) in run.ground_truth()
    assert Event("af", 30.0, 120.0) in chunk.events
    first_ns, fs, ecg = chunk.waveforms["ecg"]
    samples = np.rint((chunk.r_peaks_ns - first_ns) / 1e9 * fs).astype(int)
    af_types = chunk.beat_types[(chunk.r_peaks_ns - START_NS) / 1e9 > 31.0]
    assert set(af_types.tolist()) <= {"A", "V", "N"} and "A" in af_types.tolist()
    assert np.all((samples >= 0) & (samples < len(ecg)))


def test_run_is_deterministic_by_seed() -> None:
    scenario = load_scenario("diabetes_deteriorating")
    a = scenario.start(START_NS, seed=4).advance(86400.0)
    b = scenario.start(START_NS, seed=4).advance(86400.0)
    c = scenario.start(START_NS, seed=5).advance(86400.0)
    assert np.array_equal(a.numerics["blood_glucose"][1], b.numerics["blood_glucose"][1])
    assert not np.array_equal(a.numerics["blood_glucose"][1], c.numerics["blood_glucose"][1])


def test_device_faults_appear_in_runs() -> None:
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data["devices"][0]["imperfections"] = {"duplicate_prob": 0.05, "late_prob": 0.05, "late_delay": "30s",
                                           "clock_drift_ppm": 100}
    data["timeline"].append({"type": "dropout", "start": "1h", "duration": "10min", "device": "ox"})
    run = parse_scenario(data).start(START_NS, seed=1)
    times_ns, _ = run.advance(7200.0).numerics["spo2"]
    seconds = (times_ns - START_NS) / 1e9
    assert len(np.unique(times_ns)) < len(times_ns)  # duplicates
    assert np.any(np.diff(times_ns) < 0)  # late readings after newer ones
    assert not np.any((seconds > 3601.0) & (seconds < 4199.0))  # dropout
    assert seconds.max() > 7199.0 * (1 + 90e-6)  # the device clock runs fast


def test_a_scenario_file_mistake_names_the_line_and_sim_says_it_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vitalbridge.cli import main

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(MINIMAL, sort_keys=False).replace("metrics:", "metrcs:"))
    with pytest.raises(ScenarioError, match=r"^mine\.yaml:\d+: devices\[0\]\.metrcs: unknown field; expected one "
                                            r"of: fs, id, imperfections, interval, kind, metrics, profile, schedule"):
        load_scenario(path)
    for command in (["sim", "run", str(path), "--for", "1"], ["sim", "export", str(path), "--out", str(tmp_path)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: mine.yaml:") and len(err.splitlines()) == 1


def test_the_schema_allows_exactly_the_simulated_names() -> None:
    import typing

    from simulators.scenarios import model
    from simulators.scenarios._schema import Condition, EventType, Metric

    assert typing.get_args(Condition) == model.CONDITIONS
    assert typing.get_args(Metric) == model.SUPPORTED_METRICS
    assert typing.get_args(EventType) == tuple(model.EVENT_TYPES)
