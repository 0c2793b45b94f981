"""`sim run`: scenario batches into real Mosquitto; the cloud stores every value published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloud.timeseries import NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT
from tests.integration.helpers import count_points, wait_for
from vitalbridge.home import SimRunOptions, run_scenario

pytestmark = pytest.mark.integration


async def _stored(cloud: Any) -> int:
    return await count_points(cloud.influx, NUMERIC_MEASUREMENT) + await count_points(cloud.influx,
                                                                                      WAVEFORM_MEASUREMENT)


async def test_direct_mode_replays_a_day_in_seconds_and_every_value_is_stored(stack: Any, cloud: Any,
                                                                              unique_name: Any) -> None:
    options = SimRunOptions("copd_deteriorating", mode="direct", speed=28_800.0, duration_s=3.0,
                            mqtt_url=stack.mqtt_url, gateway=unique_name("simgw"), seed=2)
    result = await run_scenario(options, announce=lambda _line: None)
    assert result.errors == {}
    assert result.scenario_s == pytest.approx(86_400.0)
    assert result.published_values > 100_000  # a day of 1 Hz SpO2 and pulse rate, and more
    await wait_for(lambda: cloud.stats.stored_batches == result.batches, timeout_s=20.0)
    assert await count_points(cloud.influx, NUMERIC_MEASUREMENT) == result.published_values


async def test_direct_mode_with_waveforms_stores_every_sample(stack: Any, cloud: Any, unique_name: Any) -> None:
    options = SimRunOptions("af_stable", mode="direct", speed=5.0, duration_s=2.0, mqtt_url=stack.mqtt_url,
                            gateway=unique_name("simgw"), waveforms=True)
    result = await run_scenario(options, announce=lambda _line: None)
    assert result.errors == {}
    await wait_for(lambda: cloud.stats.stored_batches == result.batches)
    waves = await count_points(cloud.influx, WAVEFORM_MEASUREMENT)
    assert waves >= 10 * (250 + 75) - 2  # 10 s of ECG at 250 Hz and PPG at 75 Hz
    assert await _stored(cloud) == result.published_values


async def test_home_mode_goes_through_a_real_edge_agent(stack: Any, cloud: Any, unique_name: Any) -> None:
    lines: list[str] = []
    options = SimRunOptions("af_stable", speed=120.0, duration_s=3.0, mqtt_url=stack.mqtt_url,
                            gateway=unique_name("simhome"), seed=1)
    result = await run_scenario(options, announce=lines.append)
    assert result.mode == "home" and result.errors == {}
    assert result.published_values > 0 and result.scenario_s > 0
    skipped = [line for line in lines if line.startswith("warning:") and line.endswith("skipped (--mode direct "
                                                                                      "publishes its readings)")]
    assert skipped == [] and result.skipped_devices == ()  # the ECG patch too has a virtual device now
    await wait_for(lambda: cloud.stats.stored_batches == result.batches)
    assert await _stored(cloud) == result.published_values
    ecg = await count_points(cloud.influx, WAVEFORM_MEASUREMENT, "\"device\" = 'patch' AND \"metric\" = 'ecg'")
    assert ecg > 0  # the patch's ECG, through its device bytes


def test_sim_run_command_prints_counts_and_refuses_an_unknown_scenario(stack: Any, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vitalbridge.cli", "sim", "run", "diabetes_stable", "--mode", "direct",
         "--speed", "3600", "--for", "1", "--mqtt-url", stack.mqtt_url],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["published_values"] > 0 and final["batches"] > 0
    assert final["scenario_s"] == 3600.0
    missing = subprocess.run([sys.executable, "-m", "vitalbridge.cli", "sim", "run", "nope"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2
    assert "unknown scenario 'nope'" in missing.stderr and "Traceback" not in missing.stderr
