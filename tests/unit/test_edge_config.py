"""The gateway config file: a good file parses whole, and every error names its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.config import ConfigError, DeviceConfig, GatewayConfig, dump_config, load_config, parse_config

_GOOD = """\
gateway: home-0001
mqtt_url: mqtts://broker.example.org:8883
spool: state/spool.db
batch_interval_s: 2.5
utc_offset_s: 3600
devices:
  - id: oximeter-1
    patient: patient-001
    profile: generic.plx_oximeter
    transport: ble
    address: "C4:7F:51:0A:11:22"
  - id: cuff-1
    patient: patient-001
    profile: generic.bp_cuff
    transport: virtual
    options: {scenario: hypoxia, seed: 7}
pipeline:
  spo2: {median_window: 5}
"""

_EXPECTED = GatewayConfig(
    gateway="home-0001",
    mqtt_url="mqtts://broker.example.org:8883",
    spool="state/spool.db",
    batch_interval_s=2.5,
    utc_offset_s=3600,
    devices=(
        DeviceConfig("oximeter-1", "patient-001", "generic.plx_oximeter", "ble", "C4:7F:51:0A:11:22"),
        DeviceConfig("cuff-1", "patient-001", "generic.bp_cuff", "virtual", "",
                     {"scenario": "hypoxia", "seed": 7}),
    ),
    pipeline={"spo2": {"median_window": 5}},
)


def _minimal(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"gateway": "gw-1", "mqtt_url": "mqtt://127.0.0.1:1883",
                           "devices": [{"id": "d1", "patient": "p1", "profile": "prof", "transport": "ble"}]}
    raw.update(changes)
    return raw


def test_good_file_parses_whole(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(_GOOD)
    assert load_config(path) == _EXPECTED


def test_defaults() -> None:
    config = parse_config({"gateway": "gw-1", "mqtt_url": "mqtt://localhost"})
    assert config == GatewayConfig("gw-1", "mqtt://localhost", "vitalbridge-spool.db")
    assert (config.batch_interval_s, config.utc_offset_s, config.devices, config.pipeline) == (5.0, 0, (), {})


def test_dump_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "again.yaml"
    path.write_text(dump_config(_EXPECTED))
    assert load_config(path) == _EXPECTED


def _error(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "gw.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "gw.yaml: expected a mapping at the top level"),
        ([1, 2], "gw.yaml: expected a mapping at the top level"),
        (_minimal(colour="red", size=2), "gw.yaml: unknown field(s) colour, size"),
        ({"mqtt_url": "mqtt://h"}, "gw.yaml: missing required field 'gateway'"),
        (_minimal(gateway="home 1"), "gw.yaml: 'gateway' must be 1-64 letters, digits, '.', '_' or '-', not 'home 1'"),
        ({"gateway": "gw"}, "gw.yaml: missing required field 'mqtt_url'"),
        (_minimal(mqtt_url="http://h"), "gw.yaml: mqtt_url: broker URL 'http://h' must start with mqtt:// or mqtts://"),
        (_minimal(batch_interval_s=0), "gw.yaml: batch_interval_s must be a number of seconds in 0.05..3600"),
        (_minimal(batch_interval_s="5"), "batch_interval_s"),
        (_minimal(batch_interval_s=True), "batch_interval_s"),
        (_minimal(batch_interval_s=float("nan")), "batch_interval_s"),
        (_minimal(devices={"id": "d1"}), "gw.yaml: devices must be a list"),
        (_minimal(devices=["d1"]), "gw.yaml: devices[0]: expected a mapping"),
        (_minimal(pipeline=[1]), "gw.yaml: pipeline must be a mapping of metric -> settings"),
    ],
)
def test_top_level_errors_name_the_field(raw: Any, message: str) -> None:
    assert message in _error(raw)


@pytest.mark.parametrize("value", ["abc", "3600", 1.5, True, None, 10**9])
def test_bad_utc_offset_names_the_field(value: Any) -> None:
    assert "gw.yaml: utc_offset_s must be a whole number of seconds" in _error(_minimal(utc_offset_s=value))


@pytest.mark.parametrize("value", [0, -18000, 50400])
def test_good_utc_offsets(value: int) -> None:
    assert parse_config(_minimal(utc_offset_s=value)).utc_offset_s == value


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"patient": "p1", "profile": "prof", "transport": "ble"}, "gw.yaml: devices[1]: missing required field 'id'"),
        ({"id": "d2", "profile": "prof", "transport": "ble"}, "gw.yaml: devices[1]: missing required field 'patient'"),
        ({"id": "d2", "patient": "p1", "transport": "ble"}, "gw.yaml: devices[1]: missing required field 'profile'"),
        ({"id": "d2", "patient": "p1", "profile": "prof"}, "gw.yaml: devices[1]: missing required field 'transport'"),
        ({"id": "d1", "patient": "p1", "profile": "prof", "transport": "ble"},
         "gw.yaml: devices[1]: device id 'd1' is used twice"),
        ({"id": "d2", "patient": "p/1", "profile": "prof", "transport": "ble"}, "devices[1]: 'patient' must be"),
        ({"id": "d2", "patient": "p1", "profile": "prof", "transport": "ble", "options": [1]},
         "gw.yaml: devices[1]: options must be a mapping"),
        ({"id": "d2", "patient": "p1", "profile": "prof", "transport": "ble", "pin": 1},
         "gw.yaml: devices[1]: unknown field(s) pin"),
    ],
)
def test_device_errors_name_the_device_and_field(device: dict[str, Any], message: str) -> None:
    raw = _minimal()
    raw["devices"].append(device)
    assert message in _error(raw)


def test_unreadable_and_invalid_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=f"cannot read gateway config {missing}"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("gateway: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{broken}: not valid YAML"):
        load_config(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=f"{empty}: expected a mapping at the top level"):
        load_config(empty)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
