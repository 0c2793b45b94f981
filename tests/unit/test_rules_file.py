"""Rules as data: the YAML rules file (errors name file, line, field), `cloud run --rules`/VB_RULES, the default
set, patient settings files, and `vitalbridge rules validate|evaluate` replaying a CSV recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules import DEFAULT_RULE_FILES, build_rules, load_patient_settings, load_rules_file
from cloud.rules._replay import parse_samples_csv
from cloud.service import CloudConfig, ConfigError
from device_profiles.userfile import UserFileError
from vitalbridge.cli import main

GOOD = """\
- type: threshold
  name: spo2_low
  metric: spo2
  direction: below
  threshold: 90
  for_s: 60
- type: trend
  name: weight_gain
  conditions: [heart_failure]
  metric: body_weight
  change: 2
  window_s: 259200
"""


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_rules_file_loads_and_builds(tmp_path: Path) -> None:
    configs = load_rules_file(_write(tmp_path, GOOD))
    assert [(c.type, c.name) for c in configs] == [("threshold", "spo2_low"), ("trend", "weight_gain")]
    assert [rule.name for rule in build_rules(configs)] == ["spo2_low", "weight_gain"]


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace("threshold: 90", "threshold: ninety"), r":5: \[0\]\.threshold: expected a number, not 'ninety'"),
    (GOOD.replace("metric: body_weight", "metric: weight"), r":10: \[1\]\.metric: unknown metric 'weight'"),
    (GOOD.replace("type: trend", "type: trendy"), r":7: \[1\]\.type: unknown rule type 'trendy'; known: "),
    (GOOD.replace("  change: 2\n", ""), r":7: \[1\]\.change: missing required field"),
    (GOOD.replace("  for_s: 60\n", "  for_s: 60\n  colour: red\n"), r":7: \[0\]\.colour: unknown field; expected one "),
    (GOOD.replace("name: weight_gain", "name: spo2_low"), r":8: \[1\]\.name: rule name 'spo2_low' is used twice"),
    (GOOD.replace("[heart_failure]", "[gout]"), r":9: \[1\]\.conditions\[0\]: expected one of: hypertension, "),
    (GOOD.replace("for_s: 60", "for_s: -1"), r":6: \[0\]\.for_s: expected a number at least 0, not -1"),
    ("- type: threshold\n  name: [x\n", r":3: not valid YAML"),
    ("type: threshold\n", r":1: expected a list of rules"),
])
def test_mistakes_name_the_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UserFileError, match=rf"^{path}{message}") as info:
        load_rules_file(path)
    assert "\n" not in str(info.value)


def test_default_rule_set_ships_one_file_per_condition() -> None:
    import cloud.rules

    folder = Path(cloud.rules.__file__).parent / "defaults"
    assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(DEFAULT_RULE_FILES)
    for name in DEFAULT_RULE_FILES:
        configs = load_rules_file(folder / f"{name}.yaml")
        assert configs, name
        if name != "general":
            assert all(c.conditions == (name,) for c in configs), name


def test_cloud_config_loads_the_rules_file_from_the_flag_or_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    config = CloudConfig.from_env({"VB_RULES": str(path)})
    assert config.rules is not None and [r["name"] for r in config.rules] == ["spo2_low", "weight_gain"]
    assert [r.name for r in build_rules(config.rules)] == ["spo2_low", "weight_gain"]
    bad = _write(tmp_path, GOOD.replace("threshold: 90", "threshold: x"), "bad.yaml")
    with pytest.raises(ConfigError, match=rf"^--rules: {bad}:5: \[0\]\.threshold: expected a number"):
        CloudConfig.from_env({"VB_RULES": str(path)}, rules_file=str(bad))
    with pytest.raises(ConfigError, match=rf"^VB_RULES: {tmp_path}/none.yaml: no such file$"):
        CloudConfig.from_env({"VB_RULES": str(tmp_path / "none.yaml")})
    assert CloudConfig.from_env({}).rules is None  # the default set


def test_cloud_run_with_a_bad_rules_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, GOOD.replace("threshold: 90", "threshold: x"))
    assert main(["cloud", "run", "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"vitalbridge cloud run: --rules: {bad}:5: [0].threshold: expected a number")


def test_patient_settings_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "p1:\n  conditions: [copd]\n  spo2_scale: 2\n  time_zone: Europe/Paris\n"
                            "p2:\n  rules:\n    spo2_low: {threshold: 92}\n", "settings.yaml")
    table = load_patient_settings(path)
    assert table["p1"].spo2_scale == 2 and table["p2"].rules == {"spo2_low": {"threshold": 92}}
    bad = _write(tmp_path, "p1:\n  time_zone: Mars/Olympus\n", "bad.yaml")
    with pytest.raises(UserFileError, match=rf"^{bad}:2: p1\.time_zone: unknown time zone 'Mars/Olympus'"):
        load_patient_settings(bad)
    window = _write(tmp_path, "p1:\n  care_plan:\n    - metric: bp_systolic\n      windows:\n"
                              "        - {start: '10:00', end: '09:00'}\n", "window.yaml")
    with pytest.raises(UserFileError, match=r":5: p1\.care_plan\[0\]\.windows\[0\]: window end 09:00 must be after"):
        load_patient_settings(window)


# -- replay ------------------------------------------------------------------------------------------------------------
RECORDING = """\
time,patient,metric,value
2024-05-01T10:00:00Z,p1,spo2,95
2024-05-01T10:00:30Z,p1,spo2,91
2024-05-01T10:02:00Z,p1,spo2,91
2024-05-01T10:05:00Z,p1,spo2,96
2024-05-01T10:06:00Z,p1,spo2,96
1714557600,p2,spo2,91
1714557800,p2,spo2,91
1714558000,p2,spo2,97
"""


def test_rules_evaluate_prints_what_would_fire_per_patient_settings(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rules = _write(tmp_path, GOOD)
    recording = _write(tmp_path, RECORDING, "samples.csv")
    assert main(["rules", "evaluate", "--rules", str(rules), "--input", str(recording)]) == 0
    assert capsys.readouterr().out == ""  # 91 % is not below 90 %
    tuned = _write(tmp_path, "p1:\n  version: '2'\n  rules:\n    spo2_low: {threshold: 92}\n", "settings.yaml")
    assert main(["rules", "evaluate", "--rules", str(rules), "--input", str(recording),
                 "--patient-settings", str(tuned)]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [(r["patient"], r["state"], r["time"]) for r in records] == [
        ("p1", "open", "2024-05-01T10:02:00Z"), ("p1", "resolved", "2024-05-01T10:06:00Z")]
    assert records[0]["message"] == "spo2 below 92 % for 1 min (worst 91 %)"
    assert records[0]["rule_version"].endswith("@2")
    assert captured.err == "1 alert(s) on 8 samples of 2 patient(s)\n"


def test_rules_evaluate_can_show_pending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = _write(tmp_path, "time,patient,metric,value\n0,p1,spo2,85\n30,p1,spo2,97\n", "samples.csv")
    assert main(["rules", "evaluate", "--input", str(recording), "--pending", "--tick-s", "10"]) == 0
    states = [json.loads(line)["state"] for line in capsys.readouterr().out.splitlines()]
    assert states == ["pending", "resolved"]  # the default spo2 rule waits 60 s; it never fired


@pytest.mark.parametrize(("line", "message"), [
    ("yesterday,p1,spo2,90", "time 'yesterday' is neither ISO 8601 nor Unix seconds"),
    ("2024-05-01T10:00:00,p1,spo2,90", "time '2024-05-01T10:00:00' has no time zone (add Z or +01:00)"),
    ("0,p 1,spo2,90", "patient 'p 1' is not a valid identifier"),
    ("0,p1,spo3,90", "unknown metric 'spo3'"),
    ("0,p1,spo2,high", "value 'high' is not a number"),
    ("0,p1,spo2,nan", "value 'nan' is not a finite number"),
    ("0,p1,spo2", "expected 4 columns, got 3"),
])
def test_bad_rows_are_one_line_errors_with_the_line_number(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           line: str, message: str) -> None:
    recording = _write(tmp_path, f"time,patient,metric,value\n0,p1,spo2,97\n{line}\n", "samples.csv")
    assert main(["rules", "evaluate", "--input", str(recording)]) == 1
    assert capsys.readouterr().err == f"{recording}:3: {message}\n"


def test_recordings_from_sim_export_are_read_with_a_patient(tmp_path: Path) -> None:
    text = "time_ns,seconds_from_start,metric,value\n1704067200000000000,0.000,spo2,95\n"
    [(patient, sample)] = parse_samples_csv(text, "numerics.csv", patient="sim")
    assert (patient, sample.metric, sample.time_ns, sample.value) == ("sim", "spo2", 1704067200000000000, 95.0)
    with pytest.raises(UserFileError, match="header lacks column"):
        parse_samples_csv(text, "numerics.csv")


def test_rules_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "validate", str(_write(tmp_path, GOOD))]) == 0
    assert "2 rule(s) OK: spo2_low, weight_gain" in capsys.readouterr().out
    bad = _write(tmp_path, GOOD.replace("metric: spo2", "metric: spo3"), "bad.yaml")
    assert main(["rules", "validate", str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"{bad}:3: [0].metric: unknown metric 'spo3'")


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from("0123456789,.:-TZ+ \npsoe2abcnf\"'"), max_size=200))
def test_any_csv_text_is_samples_or_one_clear_error(text: str) -> None:
    try:
        parse_samples_csv("time,patient,metric,value\n" + text, "x.csv")
    except UserFileError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("x.csv")


def test_rules_evaluate_refuses_a_bad_override_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = _write(tmp_path, RECORDING, "samples.csv")
    tuned = _write(tmp_path, "p1:\n  rules:\n    spo2_low_sustained: {threshold: low}\n", "settings.yaml")
    assert main(["rules", "evaluate", "--input", str(recording), "--patient-settings", str(tuned)]) == 1
    err = capsys.readouterr().err
    assert err == (f"{tuned}: p1: rule spo2_low_sustained: patient override threshold: "
                   "Input should be a valid number, unable to parse string as a number\n")
