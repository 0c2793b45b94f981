"""The demo end to end: virtual devices -> edge -> real Mosquitto -> ingest -> real InfluxDB -> alert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloud.store import AlertQuery, open_store
from vitalbridge.demo import DemoOptions, run_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_demo_against_separately_started_servers(stack: Any, tmp_path: Path) -> None:
    options = DemoOptions(duration_s=20.0, mqtt_url=stack.mqtt_url, influx_url=stack.influx_url,
                          history_s=2 * 3600.0, speed=480.0, run_dir=tmp_path)
    lines: list[str] = []
    result = await run_demo(options, announce=lines.append)
    assert result.published > 1000
    assert result.stored == result.published
    assert result.alerts >= 1
    store = open_store(f"sqlite:///{tmp_path / 'cloud.db'}")
    try:
        patients = {alert.patient for alert in store.alerts(AlertQuery())}
    finally:
        store.close()
    assert patients == {"patient-003"}  # the hypoxic patient, and only them
    assert any(stack.mqtt_url in line for line in lines)
    assert any(line.strip().startswith("dashboard: http://") and "/web/ " in line for line in lines)
    # The registry is enforced in the demo: everything published was stored, so its gateway is bound.
    assert any(line.strip().startswith("doctor login: demo.doctor / ") for line in lines)
    assert any(line.strip().startswith("family login: demo.family / ") for line in lines)
    assert any("open profile" in line for line in lines)  # servers it did not start: as they are


def test_demo_command_starts_its_own_stack_and_prints_the_counts(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "vitalbridge.cli", "demo", "--for", "25", "--history", "7200", "--speed", "600",
         "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    final = json.loads(completed.stdout.strip().splitlines()[-1])
    assert final["stored"] == final["published"] > 0
    assert final["alerts"] >= 1
    assert "/api/v1" in completed.stdout
    assert "dashboard: http://" in completed.stdout and "/web/" in completed.stdout
    assert "doctor login: demo.doctor" in completed.stdout and "family login: demo.family" in completed.stdout
    assert "secure profile" in completed.stdout and "broker mqtts://" in completed.stdout  # the default
