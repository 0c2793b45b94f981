"""The gateway config file: a good file parses whole, and every error names its file, line and field."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from edge.config import ConfigError, DeviceConfig, GatewayConfig, load_config, parse_config

_GOOD = """\
gateway: home-0001
mqtt_url: mqtts://broker.example.org:8883
spool: state/spool.db
batch_interval_s: 2.5
timezone: Europe/Berlin
profile_dirs: [vendor]
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
    address: hypertension_stable
    options: {seed: 7}
pipeline:
  spo2: {heartbeat_s: 60}
"""


def _expected(base: Path) -> GatewayConfig:
    return GatewayConfig(
        gateway="home-0001",
        mqtt_url="mqtts://broker.example.org:8883",
        spool="state/spool.db",
        batch_interval_s=2.5,
        devices=(
            DeviceConfig("oximeter-1", "patient-001", "generic.plx_oximeter", "ble", "C4:7F:51:0A:11:22"),
            DeviceConfig("cuff-1", "patient-001", "generic.bp_cuff", "virtual", "hypertension_stable", {"seed": 7}),
        ),
        pipeline={"spo2": {"heartbeat_s": 60}},
        timezone="Europe/Berlin",
        profile_dirs=(str(base / "vendor"),),
    )


def _minimal(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"gateway": "gw-1", "mqtt_url": "mqtt://127.0.0.1:1883",
                           "devices": [{"id": "d1", "patient": "p1", "profile": "prof", "transport": "ble"}]}
    raw.update(changes)
    return raw


def test_good_file_parses_whole(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(_GOOD)
    assert load_config(path) == _expected(tmp_path)


def test_defaults() -> None:
    config = parse_config({"gateway": "gw-1", "mqtt_url": "mqtt://localhost"})
    assert config == GatewayConfig("gw-1", "mqtt://localhost", "vitalbridge-spool.db")
    assert (config.batch_interval_s, config.utc_offset_s, config.timezone, config.devices, config.pipeline) == (
        5.0, None, None, (), {})
    assert config.zone() == dt.UTC
    assert config.status_path == Path("vitalbridge-spool.db.status.json")


def test_publisher_settings_come_from_the_file_and_the_rest_default(tmp_path: Path) -> None:
    from device_profiles.registry import DecoderRegistry
    from edge.agent import EdgeAgent
    from edge.publisher import PublisherSettings
    from edge.transports import TransportRegistry

    config = parse_config(_minimal(devices=[], batch_interval_s=2, publisher={
        "ack_timeout_s": 10, "window": 8, "reconnect_max_s": 20, "reconnect_jitter": 0.5}))
    assert config.publisher == {"ack_timeout_s": 10, "window": 8, "reconnect_max_s": 20, "reconnect_jitter": 0.5}
    agent = EdgeAgent(dataclasses.replace(config, spool=":memory:"), profiles={}, decoders=DecoderRegistry(),
                      transports=TransportRegistry())
    try:
        assert agent.publisher.settings == PublisherSettings(
            ack_timeout_s=10, window=8, live_window_s=6.0, reconnect_max_s=20, reconnect_jitter=0.5)
    finally:
        agent.spool.close()
    assert parse_config(_minimal()).publisher == {}
    assert parse_config(_minimal(publisher={"live_window_s": 0})).publisher == {"live_window_s": 0}


@pytest.mark.parametrize(("section", "message"), [
    ({"window": 0}, "publisher.window: expected a number at least 1, not 0"),
    ({"window": 2.5}, "publisher.window:"),
    ({"ack_timeout_s": "30"}, "publisher.ack_timeout_s:"),
    ({"reconnect_jitter": 1.5}, "publisher.reconnect_jitter: expected a number at most 1, not 1.5"),
    ({"reconnect_initial_s": 10, "reconnect_max_s": 5},
     "reconnect_max_s (5) must be at least reconnect_initial_s (10)"),
    ({"acktimeout_s": 30}, "publisher.acktimeout_s: unknown field"),
    ({"session_expiry_s": -1}, "publisher.session_expiry_s:"),
])
def test_publisher_mistakes_name_the_field(section: dict[str, Any], message: str) -> None:
    assert message in _error(_minimal(publisher=section))


def test_publisher_mistakes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(_GOOD + "publisher:\n  ack_timeout_s: 30\n  window: -4\n")
    line = len(_GOOD.splitlines()) + 3
    with pytest.raises(ConfigError, match=rf"^{path}:{line}: publisher.window: expected a number at least 1, not -4"):
        load_config(path)


def test_status_file_defaults_to_beside_the_spool_and_can_be_set() -> None:
    assert parse_config(_minimal(spool="/var/lib/vb/spool.db")).status_path == Path("/var/lib/vb/spool.db.status.json")
    assert parse_config(_minimal(status_file="/run/vb.json")).status_path == Path("/run/vb.json")


def test_timezone_by_name_follows_daylight_saving() -> None:
    config = parse_config(_minimal(timezone="Europe/Berlin"))
    winter = int(dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC).timestamp()) * 10**9
    summer = int(dt.datetime(2026, 7, 15, 12, tzinfo=dt.UTC).timestamp()) * 10**9
    assert (config.offset_s_at(winter), config.offset_s_at(summer)) == (3600, 7200)
    assert parse_config(_minimal(timezone="Asia/Shanghai")).offset_s_at(summer) == 8 * 3600


def test_the_system_zone_is_the_default_only_when_the_file_names_none() -> None:
    assert parse_config(_minimal(), default_timezone="America/New_York").timezone == "America/New_York"
    assert parse_config(_minimal(timezone="Europe/Paris"), default_timezone="America/New_York").timezone == \
        "Europe/Paris"
    fixed = parse_config(_minimal(utc_offset_s=3600), default_timezone="America/New_York")
    assert (fixed.timezone, fixed.utc_offset_s, fixed.offset_s_at(0)) == (None, 3600, 3600)


def _error(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "gw.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "gw.yaml: expected a mapping of settings"),
        ([1, 2], "gw.yaml: expected a mapping of settings"),
        (_minimal(colour="red"), "gw.yaml: colour: unknown field; expected one of: batch_interval_s, devices,"),
        ({"mqtt_url": "mqtt://h"}, "gw.yaml: gateway: missing required field"),
        (_minimal(gateway="home 1"), "gw.yaml: gateway: expected 1-64 letters, digits, '.', '_' or '-', not 'home 1'"),
        ({"gateway": "gw"}, "gw.yaml: mqtt_url: missing required field"),
        (_minimal(mqtt_url="http://h"), "gw.yaml: mqtt_url: broker URL 'http://h' must start with mqtt:// or mqtts://"),
        (_minimal(batch_interval_s=0), "gw.yaml: batch_interval_s: expected a number at least 0.05, not 0"),
        (_minimal(batch_interval_s="5"), "gw.yaml: batch_interval_s: expected a number, not '5'"),
        (_minimal(batch_interval_s=True), "batch_interval_s: expected a number, not True"),
        (_minimal(batch_interval_s=float("nan")), "batch_interval_s: expected a finite number"),
        (_minimal(devices={"id": "d1"}), "gw.yaml: devices: expected a list"),
        (_minimal(devices=["d1"]), "gw.yaml: devices[0]: expected a mapping, not 'd1'"),
        (_minimal(pipeline=[1]), "gw.yaml: pipeline: expected a mapping"),
        (_minimal(pipeline={"spo2": {"median_window": 5}}),
         "gw.yaml: pipeline.spo2.median_window: unknown option: not read by the stages validate, spike_filter, "
         "swinging_door; options: deadband"),
        (_minimal(pipeline={"ecg": {"lowpass_hz": -40}}),
         "gw.yaml: pipeline.ecg.lowpass_hz: expected a number greater than 0, not -40"),
        (_minimal(pipeline={"blood_pressure": {}}), "gw.yaml: pipeline.blood_pressure: unknown metric"),
        (_minimal(timezone="Europe/Berln"), "gw.yaml: timezone: unknown time zone 'Europe/Berln'; use a name like "
                                            "Europe/Berlin or America/New_York (did you mean Europe/Berlin"),
        (_minimal(timezone="Europe/Berlin", utc_offset_s=3600),
         "gw.yaml: utc_offset_s: give either timezone (e.g. Europe/Berlin, with daylight saving) or the older"),
        (_minimal(profile_dirs="vendor"), "gw.yaml: profile_dirs: expected a list, not 'vendor'"),
    ],
)
def test_top_level_errors_name_the_field(raw: Any, message: str) -> None:
    assert message in _error(raw)


@pytest.mark.parametrize("value", ["abc", "3600", 1.5, True, 10**9])
def test_bad_utc_offset_names_the_field(value: Any) -> None:
    assert _error(_minimal(utc_offset_s=value)).startswith("gw.yaml: utc_offset_s: expected")


@pytest.mark.parametrize("value", [0, -18000, 50400])
def test_the_old_fixed_utc_offset_keeps_working(value: int) -> None:
    config = parse_config(_minimal(utc_offset_s=value))
    assert (config.utc_offset_s, config.offset_s_at(1_700_000_000 * 10**9)) == (value, value)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"patient": "p1", "profile": "prof", "transport": "ble"}, "gw.yaml: devices[1].id: missing required field"),
        ({"id": "d2", "profile": "prof", "transport": "ble"}, "gw.yaml: devices[1].patient: missing required field"),
        ({"id": "d2", "patient": "p1", "transport": "ble"}, "gw.yaml: devices[1].profile: missing required field"),
        ({"id": "d2", "patient": "p1", "profile": "prof"}, "gw.yaml: devices[1].transport: missing required field"),
        ({"id": "d1", "patient": "p1", "profile": "prof", "transport": "ble"},
         "gw.yaml: devices[1].id: device id 'd1' is used twice (also devices[0])"),
        ({"id": "d2", "patient": "p/1", "profile": "prof", "transport": "ble"}, "devices[1].patient: expected 1-64"),
        ({"id": "d2", "patient": "p1", "profile": "prof", "transport": "ble", "options": [1]},
         "gw.yaml: devices[1].options: expected a mapping, not [1]"),
        ({"id": "d2", "patient": "p1", "profile": "prof", "transport": "ble", "pin": 1},
         "gw.yaml: devices[1].pin: unknown field; expected one of: address, id, options, patient, profile, transport"),
        ({"id": "d2", "patient": "p1", "profile": "prof", "transport": "ble", "address": 40953},
         "gw.yaml: devices[1].address: expected a text, not 40953"),
    ],
)
def test_device_errors_name_the_device_and_field(device: dict[str, Any], message: str) -> None:
    raw = _minimal()
    raw["devices"].append(device)
    assert message in _error(raw)


def test_errors_in_a_file_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(_GOOD.replace("    options: {seed: 7}", "    options: {seed: 7}\n    colour: red"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:19: devices[1].colour: unknown field")
    path.write_text(_GOOD.replace("{heartbeat_s: 60}", "{heartbeat_s: -60}"))
    with pytest.raises(ConfigError, match=rf"^{path}:20: pipeline.spo2.heartbeat_s: expected a number greater"):
        load_config(path)


def test_several_problems_are_counted_in_the_one_line(tmp_path: Path) -> None:
    message = _error(_minimal(colour="red", size=2))
    assert message.startswith("gw.yaml: colour: unknown field") and message.endswith("(and 1 more problem)")


def test_unreadable_and_invalid_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=f"^{missing}: no such file"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("gateway: home\nmqtt_url: [unclosed\n")
    with pytest.raises(ConfigError, match=f"^{broken}:3: not valid YAML"):
        load_config(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=f"^{empty}: expected a mapping"):
        load_config(empty)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
