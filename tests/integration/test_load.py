"""`sim load` against real Mosquitto with the cloud ingest running; and against a closed port."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from cloud.timeseries import NUMERIC_MEASUREMENT
from simulators.load import LoadOptions, run_load
from tests.integration.helpers import count_points, wait_for
from vitalbridge.stack import free_port

pytestmark = pytest.mark.integration


async def test_short_load_is_stored_completely(stack: Any, cloud: Any, unique_name: Any) -> None:
    options = LoadOptions(stack.mqtt_url, gateways=3, patients_per_gateway=2, rate_hz=5.0, duration_s=3.0,
                          gateway_prefix=unique_name("load"))
    report = await run_load(options)
    assert report.errors == {} and report.ok
    assert report.published_values == 3 * 2 * 15 * 2  # 15 readings of 2 values per patient
    assert report.achieved_values_per_s > 0 and report.achieved_messages_per_s > 0
    assert report.latency_ms is not None and report.latency_ms["max"] > 0
    await wait_for(lambda: cloud.stats.stored_batches == report.published_messages)
    assert await count_points(cloud.influx, NUMERIC_MEASUREMENT) == report.published_values


def test_load_against_a_closed_port_reports_connection_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vitalbridge.cli", "sim", "load", "--gateways", "2", "--patients-per-gateway", "1",
         "--rate", "2", "--for", "1.5", "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["errors"]["connection_refused"] >= 2
    assert final["published_values"] == 0 and final["unsent_values"] == 2 * 3 * 2
    assert "connection_refused" in done.stdout.splitlines()[-2]


async def test_load_with_acks_counts_what_the_cloud_stored(stack: Any, cloud: Any, unique_name: Any) -> None:
    options = LoadOptions(stack.mqtt_url, gateways=4, patients_per_gateway=3, rate_hz=2.0, duration_s=3.0,
                          batch_interval_s=0.5, gateway_prefix=unique_name("acked"), track_acks=True)
    report = await run_load(options)
    assert report.ok, report.table()
    assert report.confirmed_values == report.published_values == 4 * 3 * 6 * 2
    assert report.confirmed_messages == report.published_messages and report.refused_messages == 0
    assert report.ack_latency_ms is not None and report.ack_latency_ms["p50"] > 0
    assert "e2e ack latency ms" in report.table()
    assert report.to_dict()["confirmed_values"] == report.published_values
