"""Broken profiles are rejected with messages that name the file, the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles import ProfileError, check_examples, default_registry, load_library, load_profile
from vitalbridge.cli import main

GOOD = """\
schema_version: 1
id: acme.pulse1
vendor: Acme
model: Pulse 1
source:
  document: Acme Pulse 1 BLE interface description, rev. 2
streams:
  pulse_rate: {unit: "/min", range: [30, 250]}
transport:
  ble:
    match: {names: ["ACME-P1*"]}
    characteristics:
      - name: reading
        service: "fff0"
        uuid: "fff1"
        mode: notify
        layout:
          fields:
            - {name: rate, type: u8, metric: pulse_rate}
examples:
  - hex: "48"
    expect:
      samples:
        - {metric: pulse_rate, value: 72}
"""


def write(tmp_path: Path, text: str, name: str = "acme/pulse1.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(path) in str(caught.value)
    return [(p.path, p.line, p.message) for p in caught.value.problems]


def test_the_good_profile_loads_and_its_example_passes(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert profile.id == "acme.pulse1"
    assert check_examples(profile, default_registry(load_entry_points=False)) == []


def test_wrong_unit_names_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('unit: "/min"', 'unit: "bpm"'))
    [(field, line, message)] = problems_of(path)
    assert (field, line) == ("streams.pulse_rate.unit", 8)
    assert "'/min'" in message


def test_unknown_field_and_bad_mode_are_both_reported(tmp_path: Path) -> None:
    text = GOOD.replace("mode: notify", "mode: notfy").replace("model: Pulse 1", "model: Pulse 1\ncolour: red")
    found = problems_of(write(tmp_path, text))
    fields = {(f, line) for f, line, _ in found}
    assert ("(document)", 1) in fields
    assert ("transport.ble.characteristics[0].mode", 17) in fields
    assert any("colour" in message for _, _, message in found)


def test_id_must_match_file_path(tmp_path: Path) -> None:
    [(field, line, message)] = problems_of(write(tmp_path, GOOD, "acme/other.yaml"))
    assert (field, line) == ("id", 2)
    assert "acme.other" in message


def test_unquoted_hex_gets_a_hint(tmp_path: Path) -> None:
    text = GOOD.replace('hex: "48"', "hex: 48")
    [(field, line, message)] = problems_of(write(tmp_path, text))
    assert (field, line) == ("examples[0].hex", 21)
    assert "quote it" in message


def test_decoder_and_layout_together_is_rejected(tmp_path: Path) -> None:
    both = "        mode: notify\n        decoder: gatt.heart_rate_measurement\n"
    text = GOOD.replace("        mode: notify\n", both)
    found = problems_of(write(tmp_path, text))
    assert found[0][0] == "transport.ble.characteristics[0]"
    assert "exactly one of: decoder, layout" in found[0][2]


def test_layout_metric_must_be_a_declared_stream(tmp_path: Path) -> None:
    text = GOOD.replace("metric: pulse_rate}", "metric: spo2}")
    [(field, line, message)] = problems_of(write(tmp_path, text))
    assert (field, line) == ("transport.ble.characteristics[0].layout.fields[0].metric", 19)
    assert "streams" in message


def test_yaml_syntax_error_and_duplicate_key_have_lines(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, GOOD.replace("vendor: Acme", "vendor: [Acme")))[0][1] is not None
    [(_, line, message)] = problems_of(write(tmp_path, GOOD.replace("model: Pulse 1", "model: Pulse 1\nvendor: X")))
    assert line == 5 and "duplicate key 'vendor'" in message


def test_wrong_expectation_is_reported_with_the_example_line(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD.replace("value: 72", "value: 73")))
    missing, unexpected = check_examples(profile, default_registry(load_entry_points=False))
    assert (missing.path, missing.line) == (unexpected.path, unexpected.line) == ("examples[0].expect", 22)
    assert missing.message == "expected but not decoded: pulse_rate=73 q=0"
    assert unexpected.message.startswith("decoded but not expected: pulse_rate=72 q=0")


def test_unregistered_decoder_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace(
        "        layout:\n          fields:\n            - {name: rate, type: u8, metric: pulse_rate}\n",
        "        decoder: acme.pulse_reading\n",
    )
    [problem] = check_examples(load_profile(write(tmp_path, text)), default_registry(load_entry_points=False))
    assert "acme.pulse_reading" in problem.message


def test_cli_validate_rejects_a_broken_profile_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace('unit: "/min"', 'unit: "bpm"'))
    assert main(["profiles", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8: streams.pulse_rate.unit:" in err


def test_cli_validate_accepts_the_good_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "validate", str(write(tmp_path, GOOD))]) == 0
    assert "ok (acme.pulse1, 1 example(s)" in capsys.readouterr().out


def test_library_rejects_a_duplicate_id(tmp_path: Path) -> None:
    write(tmp_path / "a", GOOD)
    write(tmp_path / "b", GOOD)
    with pytest.raises(ProfileError, match="already defined"):
        load_library([tmp_path / "a", tmp_path / "b"], include_shipped=False)
