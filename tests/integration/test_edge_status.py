"""`vitalbridge edge status` against a real `edge run` process: connected, broker down, a silent device.

The gateway runs as a child process (as under systemd); `edge status` only reads the status file
it keeps, so these tests check what a family member would see.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import wait_for
from vitalbridge.cli import main
from vitalbridge.stack import free_port

pytestmark = pytest.mark.integration


def _config(path: Path, gateway: str, mqtt_url: str, devices: str) -> Path:
    path.write_text(f"gateway: {gateway}\nmqtt_url: {mqtt_url}\nspool: {path.parent / 'spool.db'}\n"
                    f"timezone: Europe/Berlin\nbatch_interval_s: 0.5\ndevices:\n{devices}")
    return path


_OXIMETER = ("  - {id: oximeter-1, patient: patient-042, profile: generic.pulse_oximeter, transport: virtual,\n"
             "     address: copd_stable, options: {speed: 1, seed: 3}}\n")
# This scenario measures no temperature: the virtual thermometer connects and never sends a reading.
_SILENT = ("  - {id: thermo-1, patient: patient-042, profile: generic.thermometer, transport: virtual,\n"
           "     address: copd_acute_hypoxia, options: {seed: 1}}\n")


@pytest.fixture
def gateway_process() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _start(config: Path, started: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "edge", "run", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(process)
    return process


def _status(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["edge", "status", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _device(report: dict[str, Any], device_id: str) -> dict[str, Any]:
    return next(d for d in report.get("devices", []) if d["id"] == device_id)


async def test_a_working_gateway_with_a_silent_device(stack: Any, tmp_path: Path, unique_name: Any,
                                                      gateway_process: list[subprocess.Popen[str]],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    gateway = unique_name("home-")
    config = _config(tmp_path / "gateway.yaml", gateway, stack.mqtt_url, _OXIMETER + _SILENT)
    process = _start(config, gateway_process)

    def working_with_a_reading() -> bool:
        code, report = _status(config, capsys)
        return code == 0 and report.get("state") == "working" and \
            _device(report, "oximeter-1")["last_reading"] is not None

    await wait_for(lambda: (config.parent / "spool.db.status.json").exists(), timeout_s=60)
    await wait_for(working_with_a_reading, timeout_s=60)
    code, report = _status(config, capsys)
    assert (report["gateway"], report["connected"], report["pid"]) == (gateway, True, process.pid)
    assert report["broker"] == stack.mqtt_url.split("@")[-1]
    oximeter, thermo = _device(report, "oximeter-1"), _device(report, "thermo-1")
    assert oximeter["link"] == "connected"
    assert (thermo["link"], thermo["last_reading"]) == ("connected", None)  # connected, but silent

    assert main(["edge", "status", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Gateway {gateway} is working and connected to the cloud.")
    assert f"  Cloud: connected to {stack.mqtt_url}" in text
    assert "    thermo-1 (generic.thermometer, simulated, patient patient-042): connected since " in text
    assert text.split("thermo-1")[1].splitlines()[0].endswith("; no reading yet.")

    process.send_signal(signal.SIGTERM)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    # What `edge run` told the person at its default level: devices, broker, each device connecting.
    assert "will read device oximeter-1: generic.pulse_oximeter over virtual at copd_stable" in stderr
    assert f"cloud broker {stack.mqtt_url}" in stderr
    assert "device thermo-1 connected (simulated)" in stderr
    assert "device oximeter-1 lost its link (simulated): the gateway is stopping" in stderr
    code, report = _status(config, capsys)
    assert (code, report["state"], report["running"]) == (1, "stopped", False)


async def test_a_gateway_whose_broker_is_down(tmp_path: Path, gateway_process: list[subprocess.Popen[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    broker = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    config = _config(tmp_path / "gateway.yaml", "home-down", broker, _OXIMETER)
    process = _start(config, gateway_process)

    def told_why() -> bool:
        _code, report = _status(config, capsys)
        return bool(report.get("problems")) and _device(report, "oximeter-1")["last_reading"] is not None

    await wait_for(lambda: (config.parent / "spool.db.status.json").exists(), timeout_s=60)
    await wait_for(told_why, timeout_s=60)
    code, report = _status(config, capsys)
    assert (code, report["state"], report["connected"], report["connected_since"]) == (
        1, "disconnected", False, None)
    assert any(broker in problem["message"] and "unreachable" in problem["message"]
               for problem in report["problems"])
    await wait_for(lambda: _status(config, capsys)[1]["spool"]["batches"] > 0, timeout_s=60)

    assert main(["edge", "status", "--config", str(config)]) == 1
    text = capsys.readouterr().out
    assert text.startswith("Gateway home-down is running but NOT connected to the cloud; readings are kept")
    assert f"  Cloud: {broker} (not connected yet)." in text
    assert "  Waiting to be sent: " in text and "the oldest from" in text
    assert "  Recent problems (newest last):" in text

    os.kill(process.pid, signal.SIGKILL)  # a crash: no goodbye, the status file stays "running"
    process.communicate(timeout=30)
    code, report = _status(config, capsys)
    assert (code, report["state"]) == (1, "stopped")
    assert "its process ended without saying goodbye" in report["headline"]
