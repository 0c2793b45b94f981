"""`edge status`: what the agent writes, how it is judged and said, and the reasons people read."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from edge.config import DeviceConfig, GatewayConfig
from edge.gateway import build_agent
from edge.status import age_words, assess, describe_device_event, read_status_file, render_status, write_status_file
from edge.status_keeper import StatusKeeper
from edge.transports._ble_client import BleDeviceNotFoundError
from edge.transports._explain import explain_ble_failure, explain_serial_failure
from vitalbridge.cli import main

NOW = 1_790_000_000.0


def _status(**changes: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "format": 1, "gateway": "home-1", "pid": 4242, "running": True, "started": NOW - 3600, "updated": NOW - 1,
        "interval_s": 2.0, "broker": "mqtt://broker:1883", "connected": True, "connected_since": NOW - 3000,
        "spool": {"batches": 0, "oldest_unsent": None},
        "devices": [{"id": "oximeter-1", "patient": "p-1", "profile": "generic.pulse_oximeter", "transport": "ble",
                     "address": "C4:7F:51:0A:11:22", "link": "connected", "link_since": NOW - 600,
                     "link_reason": None, "last_reading": NOW - 3, "battery_percent": 80}],
        "problems": [],
    }
    status.update(changes)
    return status


def test_age_words() -> None:
    assert [age_words(s) for s in (0, 42, 89, 300, 5400, 7200, 7260, 3 * 86400)] == [
        "0 s", "42 s", "89 s", "5 min", "1 h 30 min", "2 h", "2 h 1 min", "3 days"]


def test_a_working_gateway_in_plain_words() -> None:
    text = render_status(_status(), NOW, process_alive=True, zone=dt.UTC)
    assert text.splitlines() == [
        "Gateway home-1 is working and connected to the cloud.",
        "  Cloud: connected to mqtt://broker:1883 since 13:23 (50 min ago).",
        "  Waiting to be sent: nothing.",
        "  Devices (1):",
        "    oximeter-1 (generic.pulse_oximeter, Bluetooth, patient p-1): connected since 14:03 (10 min ago); "
        "last reading 3 s ago; battery 80 %.",
        "  (status written 1 s ago)",
    ]
    assert assess(_status(), NOW, process_alive=True).ok


@pytest.mark.parametrize(
    ("changes", "alive", "state", "headline"),
    [
        ({"connected": False}, True, "disconnected", "Gateway home-1 is running but NOT connected to the cloud"),
        ({"stopping": True}, True, "stopping", "Gateway home-1 is stopping: it is sending what it holds"),
        ({"updated": NOW - 120}, True, "not responding", "Gateway home-1 is not responding: its status is 2 min old"),
        ({"running": False, "updated": NOW - 600}, None, "stopped", "Gateway home-1 is not running: it stopped 10 min"),
        ({}, False, "stopped", "Gateway home-1 is not running: its process ended without saying goodbye"),
    ],
)
def test_a_gateway_that_needs_attention_says_so(changes: dict[str, Any], alive: bool | None, state: str,
                                                 headline: str) -> None:
    verdict = assess(_status(**changes), NOW, process_alive=alive)
    assert (verdict.state, verdict.ok) == (state, False)
    assert verdict.headline.startswith(headline)


def test_backlog_lost_devices_and_problems_are_shown() -> None:
    device = {**_status()["devices"][0], "link": "lost", "link_reason": "disconnected", "link_since": NOW - 120,
              "last_reading": None, "battery_percent": None}
    silent = {**device, "id": "cuff-1", "link": "unreachable",
              "link_reason": "not found nearby: is it switched on, within a few metres and not connected to a phone?"}
    text = render_status(_status(connected=False, connected_since=NOW - 300,
                                 spool={"batches": 12, "oldest_unsent": NOW - 290}, devices=[device, silent],
                                 sent={"batches": 3, "values": 120, "confirmed_batches": 2, "confirmed_values": 100},
                                 problems=[{"time": NOW - 290, "message": "broker mqtt://broker:1883 unreachable"}]),
                         NOW, process_alive=True, zone=dt.UTC)
    assert "  Cloud: mqtt://broker:1883 (not connected since 14:08 (5 min ago))." in text
    assert "  Waiting to be sent: 12 batches, the oldest from 14:08 (5 min ago)." in text
    assert "  Sent since the gateway started: 120 values; the cloud confirmed storing 100." in text
    assert ("oximeter-1 (generic.pulse_oximeter, Bluetooth, patient p-1): not connected: the device disconnected "
            "(switched off, out of range, or finished its measurement) since 14:11 (2 min ago); no reading yet."
            ) in text
    assert "cuff-1 (generic.pulse_oximeter, Bluetooth, patient p-1): not connected: not found nearby" in text
    assert "    14:08  broker mqtt://broker:1883 unreachable" in text


@pytest.mark.parametrize(
    ("kind", "detail", "line"),
    [
        ("attached", {"transport": "ble", "address": "C4:7F:51:0A:11:22"},
         "device cuff-1 connected (Bluetooth C4:7F:51:0A:11:22)"),
        ("lost", {"transport": "serial", "port": "/dev/ttyUSB0", "reason": "port closed"},
         "device cuff-1 lost its link (serial port /dev/ttyUSB0): the port closed (unplugged?)"),
        ("lost", {"transport": "ble", "address": "A", "reason": "no data for 30 s"},
         "device cuff-1 lost its link (Bluetooth A): no data for 30 s: the device stopped sending"),
        ("unreachable", {"transport": "ble", "address": "A", "reason": "not found nearby", "attempts": 1},
         "device cuff-1 cannot be reached (Bluetooth A): not found nearby (attempt 1)"),
        ("battery", {"percent": 15}, "device cuff-1 battery at 15 %"),
        ("stored_records", {"outcome": "success"}, "device cuff-1: stored records (outcome success)"),
    ],
)
def test_device_events_in_words(kind: str, detail: dict[str, Any], line: str) -> None:
    assert describe_device_event("cuff-1", kind, detail) == line


def test_failures_are_explained_not_named() -> None:
    assert explain_ble_failure(FileNotFoundError(2, "No such file or directory"), timeout_s=40).startswith(
        "cannot reach the system Bluetooth service (BlueZ over D-Bus): is bluetoothd running")
    assert explain_ble_failure(BleDeviceNotFoundError("C4"), timeout_s=40).startswith("not found nearby")
    assert explain_ble_failure(TimeoutError(), timeout_s=40) == ("did not answer within 40 s: is it switched on "
                                                                 "and within a few metres?")
    assert explain_serial_failure(OSError(errno.ENOENT, "could not open port /dev/ttyUSB0: [Errno 2] No such file "
                                          "or directory"), port="/dev/ttyUSB0", timeout_s=10) == (
        "port /dev/ttyUSB0 does not exist: is the device (or its USB cable) plugged in?")
    assert explain_serial_failure(PermissionError(errno.EACCES, "Permission denied"), port="/dev/ttyS0",
                                  timeout_s=10) == ("no permission to open /dev/ttyS0: add the gateway's user to the "
                                                    "'dialout' group")


class Clock:
    def __init__(self) -> None:
        self.now_ns = int(NOW * 1e9)

    def __call__(self) -> int:
        return self.now_ns


async def test_the_keeper_writes_what_the_agent_knows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = GatewayConfig("home-1", "mqtt://127.0.0.1:1", str(tmp_path / "spool.db"), devices=(
        DeviceConfig("strap", "p-1", "generic.heart_rate_strap", "ble", "C4:7F:51:0A:11:22"),
        DeviceConfig("xpod", "p-1", "nonin.xpod", "serial", "/dev/ttyUSB9")))
    agent = build_agent(config)
    clock = Clock()
    keeper = StatusKeeper(agent, config.status_path, clock_ns=clock)
    agent.clock_ns = clock
    agent._device_event("strap", "attached", {"transport": "ble", "address": "C4:7F:51:0A:11:22"})
    agent._device_event("strap", "battery", {"percent": 55})
    agent._device_event("xpod", "unreachable", {"transport": "serial", "port": "/dev/ttyUSB9",
                                                "reason": "port /dev/ttyUSB9 does not exist", "attempts": 1})
    agent.devices["strap"].last_payload_ns = clock.now_ns - 4 * 10**9
    with keeper.problems.watching():
        import logging

        logging.getLogger("edge.publisher").warning("broker mqtt://127.0.0.1:1 unreachable; retrying in 1 s")
    await keeper.write()
    status = read_status_file(config.status_path)
    assert status["devices"] == [
        {"id": "strap", "patient": "p-1", "profile": "generic.heart_rate_strap", "transport": "ble",
         "address": "C4:7F:51:0A:11:22", "link": "connected", "link_since": NOW, "link_reason": None,
         "last_reading": NOW - 4, "battery_percent": 55},
        {"id": "xpod", "patient": "p-1", "profile": "nonin.xpod", "transport": "serial", "address": "/dev/ttyUSB9",
         "link": "unreachable", "link_since": NOW, "link_reason": "port /dev/ttyUSB9 does not exist",
         "last_reading": None, "battery_percent": None}]
    assert (status["gateway"], status["running"], status["connected"], status["connected_since"], status["pid"]) == (
        "home-1", True, False, None, os.getpid())
    assert status["spool"] == {"batches": 0, "oldest_unsent": None}
    assert [p["message"] for p in status["problems"]] == ["broker mqtt://127.0.0.1:1 unreachable; retrying in 1 s"]
    assert status["thresholds"] == {"revision": None, "refused": 0}
    await agent.receive_thresholds(b'{"v": 1, "revision": 5, "patients": {"p-1": {"spo2": [92]}}}')
    await agent.receive_thresholds(b"not json")
    await keeper.write()
    assert read_status_file(config.status_path)["thresholds"] == {"revision": 5, "refused": 1}

    monkeypatch.setattr("time.time", lambda: NOW + 1)
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(f"gateway: home-1\nmqtt_url: mqtt://127.0.0.1:1\nspool: {tmp_path / 'spool.db'}\n")
    assert main(["edge", "status", "--config", str(config_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Gateway home-1 is running but NOT connected to the cloud")
    assert "xpod (nonin.xpod, serial port, patient p-1): not connected: port /dev/ttyUSB9 does not exist" in out
    assert main(["edge", "status", "--status-file", str(config.status_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["state"], report["ok"], report["devices"][0]["battery_percent"]) == ("disconnected", False, 55)

    agent.publisher.connected.set()
    await keeper.write(running=False)
    assert main(["edge", "status", "--status-file", str(config.status_path)]) == 1
    assert capsys.readouterr().out.startswith("Gateway home-1 is not running: it stopped 1 s ago.")
    agent.spool.close()


def test_status_without_a_status_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "status", "--status-file", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vitalbridge edge status: no status file at {tmp_path / 'none.json'}: the gateway has not")
    assert len(err.splitlines()) == 1
    (tmp_path / "junk.json").write_text("{]")
    assert main(["edge", "status", "--status-file", str(tmp_path / "junk.json"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["state"] == "unknown"


def test_the_status_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "status.json"
    write_status_file(path, _status())
    write_status_file(path, _status(gateway="home-2"))
    assert read_status_file(path)["gateway"] == "home-2"
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]
