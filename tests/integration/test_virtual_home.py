"""A virtual home of several device kinds through a real edge agent, Mosquitto and InfluxDB."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pytest

from cloud.timeseries import NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT
from simulators.scenarios import Scenario, load_scenario
from tests.integration.helpers import count_points, wait_for
from vitalbridge.home import SimRunOptions, run_scenario

pytestmark = pytest.mark.integration

SCENARIO = "copd_deteriorating"
SEED = 3
WALL_S = 4.0
S = 1_000_000_000
DAY_NS = 86_400 * S
MARGIN_NS = 30 * S


def _scheduled_only(scenario: Scenario) -> Scenario:
    """The scenario with only its devices read at fixed hours (cheap to run over many days)."""
    return dataclasses.replace(scenario, devices=tuple(d for d in scenario.devices if d.schedule_hours))


def _closest_cuff_and_thermometer(scenario: Scenario, now_ns: int) -> tuple[int, int]:
    """Start and end (ns) of the shortest recent window holding a cuff and a thermometer reading.

    Both read at fixed hours +-15 min (07:30/19:30 and 08:00/14:00/20:00 UTC); a short window
    around the closest pair of the last 30 days holds a reading of every device of the home.
    """
    start = (now_ns // DAY_NS - 31) * DAY_NS
    chunk = _scheduled_only(scenario).start(start, SEED).advance(30 * 86_400)
    cuff = chunk.numerics["bp_systolic"][0]
    thermometer = chunk.numerics["body_temperature"][0]
    gaps = np.abs(cuff[:, None] - thermometer[None, :])
    i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
    first, last = sorted((int(cuff[i]), int(thermometer[j])))
    return first - MARGIN_NS, last + MARGIN_NS


async def _points(cloud: Any, measurement: str, where: str) -> list[tuple[int, float]]:
    series = await cloud.influx.query(f'SELECT "value" FROM "{measurement}" WHERE {where}')
    return [(int(t), float(v)) for t, v in series[0]["values"]] if series else []


async def _metrics_by_device(cloud: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for measurement in (NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT):
        series = await cloud.influx.query(f'SELECT count("value") FROM "{measurement}" GROUP BY "device", "metric"')
        for item in series:
            found.setdefault(item["tags"]["device"], set()).add(item["tags"]["metric"])
    return found


async def test_a_virtual_home_of_four_device_kinds_stores_every_published_value(stack: Any, cloud: Any,
                                                                                unique_name: Any) -> None:
    scenario = load_scenario(SCENARIO)
    window_start, window_end = _closest_cuff_and_thermometer(scenario, time.time_ns())
    # Paced to cover the window in WALL_S - 1 s; the run lasts WALL_S + 4 s so that a busy machine,
    # on which the home falls behind its pace, still covers the whole window.
    speed = (window_end - window_start) / S / (WALL_S - 1.0)
    lines: list[str] = []
    options = SimRunOptions(SCENARIO, speed=speed, duration_s=WALL_S + 4.0, mqtt_url=stack.mqtt_url,
                            gateway=unique_name("vhome"), seed=SEED, start_ns=window_start, utc_offset_s=3600)
    result = await run_scenario(options, announce=lines.append)

    assert result.mode == "home" and result.errors == {} and result.skipped_devices == ()
    assert result.scenario_s * S >= window_end - window_start
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: device strap: the virtual heart_rate_strap (generic.heart_rate_strap) sends heart_rate; "
        "not respiratory_rate"]
    await wait_for(lambda: cloud.stats.stored_batches == result.batches, timeout_s=15.0)
    stored = await count_points(cloud.influx, NUMERIC_MEASUREMENT) + await count_points(cloud.influx,
                                                                                        WAVEFORM_MEASUREMENT)
    assert stored == result.published_values
    found = await _metrics_by_device(cloud)
    # the Xpod's pleth samples are regularised by the agent and go through the PPG chain
    assert found["oximeter"] >= {"spo2", "pulse_rate", "ppg"}
    assert found["thermometer"] == {"body_temperature"}
    assert found["strap"] == {"heart_rate"}
    assert found["cuff"] == {"bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"}

    # the time-stamped readings went out as local time (UTC+1) and are stored at the scenario's
    # time (to the second) with the scenario's value (at the device's resolution)
    truth = _scheduled_only(scenario).start(window_start, SEED).advance((window_end - window_start) / S)
    for device, metric, decimals in (("cuff", "bp_systolic", 0), ("cuff", "bp_diastolic", 0),
                                     ("thermometer", "body_temperature", 1)):
        (reading_ns,), (value,) = truth.numerics[metric]
        expected = ((int(reading_ns) + S // 2) // S * S, round(float(value), decimals))
        points = await _points(cloud, NUMERIC_MEASUREMENT, f"\"device\" = '{device}' AND \"metric\" = '{metric}'")
        assert expected in [(t, round(v, decimals)) for t, v in points]
