"""No config mistake ends in a traceback: mutated gateway configs give one clear line, or run.

Starting from a valid config (BLE, serial and virtual devices, options, a pipeline section), each
example changes one thing - a value of the wrong type, an unknown key, a missing key, a value out
of range, a transport the profile does not speak - and the gateway's own checks (the file, then
the devices against profiles and transports) must either accept it or raise :class:`ConfigError`
with one line naming the file and the field. Any other exception fails the test.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles import load_library
from edge.config import ConfigError, load_config
from edge.gateway import build_agent, build_transports
from edge.preflight import check_devices

VALID: dict[str, Any] = {
    "gateway": "home-0001",
    "mqtt_url": "mqtt://127.0.0.1:1883",
    "spool": "spool.db",
    "batch_interval_s": 2,
    "timezone": "Europe/Berlin",
    "devices": [
        {"id": "strap", "patient": "p-1", "profile": "generic.heart_rate_strap", "transport": "ble",
         "address": "C4:7F:51:0A:11:22", "options": {"connect_timeout_s": 20, "idle_timeout_s": 60}},
        {"id": "xpod", "patient": "p-1", "profile": "nonin.xpod", "transport": "serial", "address": "/dev/ttyUSB0",
         "options": {"baud": 9600, "open_timeout_s": 5}},
        {"id": "sim", "patient": "p-2", "profile": "generic.pulse_oximeter", "transport": "virtual",
         "address": "copd_stable", "options": {"speed": 10, "seed": 3}},
    ],
    "pipeline": {
        "defaults": {"heartbeat_s": 300},
        "spo2": {"thresholds": {"low": 90}, "spike_sigmas": 3},
        "ecg": {"mains_hz": 60, "lowpass_hz": 40},
        "heart_rate": {"stages": ["validate", "swinging_door"], "deadband": 0.5},
    },
    "publisher": {"ack_timeout_s": 20, "window": 32, "live_window_s": 10, "session_expiry_s": 3600,
                  "reconnect_initial_s": 1, "reconnect_max_s": 30, "reconnect_jitter": 0.5},
}

PROFILES = load_library()
TRANSPORTS = build_transports(["virtual"])  # through the entry point, as `edge run` loads it

Path_ = tuple[str | int, ...]


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path to a value in ``node`` (mappings and lists), the root excluded."""
    found: list[Path_] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((*prefix, index))
            found += _paths(value, (*prefix, index))
    return found


def _containers(node: Any, prefix: Path_ = ()) -> list[Path_]:
    paths = [prefix] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _containers(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += _containers(value, (*prefix, index))
    return paths


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


ALL_PATHS = _paths(VALID)
MAPPINGS = _containers(VALID)
NUMBER_PATHS = [p for p in ALL_PATHS if isinstance(_get(VALID, p), int | float) and not isinstance(_get(VALID, p),
                                                                                                    bool)]

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                              max_size=2),
)
BAD_NUMBERS = st.sampled_from([-1, 0, -0.5, 1e12, -1e12, math.inf, -math.inf, math.nan, 10**30, 0.0001, 1e308,
                               1e-300, 2**63])


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    config = copy.deepcopy(VALID)
    kind = draw(st.sampled_from(["wrong_type", "unknown_key", "missing_key", "out_of_range", "wrong_transport",
                                 "wrong_profile"]))
    if kind == "wrong_type":
        path = draw(st.sampled_from(ALL_PATHS))
        _get(config, path[:-1])[path[-1]] = draw(ANY_VALUE)
    elif kind == "unknown_key":
        path = draw(st.sampled_from(MAPPINGS))
        _get(config, path)[draw(st.text(min_size=1, max_size=10))] = draw(ANY_VALUE)
    elif kind == "missing_key":
        path = draw(st.sampled_from([p for p in ALL_PATHS if isinstance(p[-1], str)]))
        del _get(config, path[:-1])[path[-1]]
    elif kind == "out_of_range":
        path = draw(st.sampled_from(NUMBER_PATHS))
        _get(config, path[:-1])[path[-1]] = draw(BAD_NUMBERS)
    elif kind == "wrong_transport":
        device = draw(st.sampled_from(config["devices"]))
        device["transport"] = draw(st.sampled_from(["ble", "serial", "virtual", "usb", ""]))
    else:
        device = draw(st.sampled_from(config["devices"]))
        device["profile"] = draw(st.sampled_from([*sorted(PROFILES), "acme.nothing"]))
    return config


def _check(path: Path) -> None:
    config = load_config(path)
    check_devices(config, profiles=PROFILES, transports=TRANSPORTS)
    # Accepted: the agent must build (pipelines included) and flush without a device.
    agent = build_agent(dataclasses.replace(config, spool=str(path.parent / "spool.db")), profiles=PROFILES,
                        transports=TRANSPORTS)
    try:
        agent.tick(final=True)
    finally:
        agent.spool.close()


def test_the_valid_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(VALID, sort_keys=False))
    _check(path)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=mutated())
def test_a_mutated_config_runs_or_gives_one_clear_line(tmp_path: Path, config: dict[str, Any]) -> None:
    path = tmp_path / "gateway.yaml"
    try:
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        pytest.skip("not representable as YAML")
    path.write_text(text, encoding="utf-8")
    try:
        _check(path)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert message.startswith(f"{path}"), message
        assert "Traceback" not in message


SCENARIO: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "simulators" / "scenarios" / "library" / "copd_deteriorating.yaml")
    .read_text())
SCENARIO_PATHS = _paths(SCENARIO)
SCENARIO_MAPPINGS = _containers(SCENARIO)


@st.composite
def mutated_scenario(draw: st.DrawFn) -> dict[str, Any]:
    scenario = copy.deepcopy(SCENARIO)
    kind = draw(st.sampled_from(["wrong_type", "unknown_key", "missing_key", "out_of_range"]))
    if kind == "wrong_type":
        path = draw(st.sampled_from(SCENARIO_PATHS))
        _get(scenario, path[:-1])[path[-1]] = draw(ANY_VALUE)
    elif kind == "unknown_key":
        path = draw(st.sampled_from(SCENARIO_MAPPINGS))
        _get(scenario, path)[draw(st.text(min_size=1, max_size=10))] = draw(ANY_VALUE)
    elif kind == "missing_key":
        path = draw(st.sampled_from([p for p in SCENARIO_PATHS if isinstance(p[-1], str)]))
        del _get(scenario, path[:-1])[path[-1]]
    else:
        numbers = [p for p in SCENARIO_PATHS if isinstance(_get(SCENARIO, p), int | float)]
        path = draw(st.sampled_from(numbers))
        _get(scenario, path[:-1])[path[-1]] = draw(BAD_NUMBERS)
    return scenario


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=mutated_scenario())
def test_a_mutated_scenario_loads_or_gives_one_clear_line(tmp_path: Path, scenario: dict[str, Any]) -> None:
    from simulators.scenarios import ScenarioError, load_scenario

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        load_scenario(path)
    except ScenarioError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("mine.yaml"), message
