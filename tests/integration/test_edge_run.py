"""`vitalbridge edge run --config FILE` as a real process, with a virtual pulse oximeter."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import count_points, wait_for

pytestmark = pytest.mark.integration


async def test_edge_run_publishes_until_sigterm_then_drains(stack: Any, cloud: Any, tmp_path: Path,
                                                            unique_name: Any) -> None:
    gateway = unique_name("home-")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"gateway: {gateway}\n"
        f"mqtt_url: {stack.mqtt_url}\n"
        f"spool: {tmp_path / 'spool.db'}\n"
        "batch_interval_s: 0.5\n"
        "devices:\n"
        "  - id: oximeter-1\n"
        "    patient: patient-042\n"
        "    profile: generic.pulse_oximeter\n"
        "    transport: virtual\n"
        "    address: copd_stable\n"
        "    options: {speed: 1, seed: 3}\n"
    )
    process = subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "edge", "run", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await wait_for(lambda: cloud.stats.stored_batches >= 3, timeout_s=30)
    finally:
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        # Off the event loop: the cloud runs on it and must confirm what the gateway sends as it drains.
        stdout, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    assert f"gateway {gateway} stopped" in stdout
    published = int(stdout.split("published ")[1].split(" values")[0])
    assert published > 0
    assert "0 batches left in the spool" in stdout
    await wait_for(lambda: cloud.worker.idle)
    await wait_for(lambda: cloud.stats.stored_samples == published, timeout_s=10)
    assert await count_points(cloud.influx, where="\"patient\" = 'patient-042'") == published


def test_edge_run_rejects_a_bad_config_with_the_field_named(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("gateway: home-1\nmqtt_url: http://nope\n")
    completed = subprocess.run([sys.executable, "-m", "vitalbridge.cli", "edge", "run", "--config", str(config)],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2
    assert "mqtt_url" in completed.stderr
    assert "Traceback" not in completed.stderr
