"""The cloud's retained patient thresholds reach a gateway through the real broker and shape its compression."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from device_profiles.registry import DecoderRegistry
from edge.agent import EdgeAgent
from edge.config import DeviceConfig, GatewayConfig
from edge.pipeline import Pipeline
from edge.transports import TransportRegistry
from tests.agent_fakes import NoDecoderProfile, never_started
from tests.integration.helpers import publish, wait_for
from tests.unit.test_pipeline_threshold_levels import step_crossings
from vitals import Stream
from vitals.patient_thresholds import build_threshold_config
from vitals.topics import config_topic

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000_000


def _agent(gateway: str, mqtt_url: str, spool: Path) -> EdgeAgent:
    transports = TransportRegistry()
    transports.add("none", never_started)
    config = GatewayConfig(gateway=gateway, mqtt_url=mqtt_url, spool=str(spool), batch_interval_s=5.0,
                           devices=(DeviceConfig(id="ox-1", patient="patient-042", profile="test.oximeter",
                                                 transport="none"),))
    return EdgeAgent(config, profiles={"test.oximeter": NoDecoderProfile()}, decoders=DecoderRegistry(),
                     transports=transports, pipeline_factory=lambda _device: Pipeline())


def _compressed_spo2(agent: EdgeAgent, values: list[float]) -> tuple[list[int], list[float]]:
    times = [T0 + i * 10**9 for i in range(len(values))]
    agent.accept_stream("ox-1", Stream("spo2", "%", times, values, [0] * len(values)))
    device = agent.devices["ox-1"]
    assert device.pipeline is not None
    streams = [s for group in device.collector.take() for s in group if s.metric == "spo2"]
    streams += [s for s in device.pipeline.flush(times[-1] + 10**9, final=True) if s.metric == "spo2"]
    return [t for s in streams for t in s.times_ns.tolist()], [v for s in streams for v in s.values.tolist()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_retained_thresholds_are_applied_kept_through_a_bad_message_and_a_restart_offline(
        stack: Any, tmp_path: Path, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("thresholds-gw-")
    host, port = stack.mqtt_url.removeprefix("mqtt://").split(":")
    # Published before the gateway ever connects: the broker keeps it for the gateway.
    publish(host, int(port), [(config_topic(gateway), build_threshold_config(
        {"patient-042": {"spo2": [92.5]}, "patient-999": {"spo2": [88]}}, revision=3))], retain=True)
    agent = _agent(gateway, stack.mqtt_url, tmp_path / "spool.db")
    publisher = asyncio.create_task(agent.publisher.run())
    try:
        await wait_for(lambda: agent.thresholds.config is not None, timeout_s=30)
        assert agent.thresholds.config is not None and agent.thresholds.config.revision == 3
        await wait_for(lambda: (tmp_path / "spool.db.thresholds.json").exists())
        publish(host, int(port), [(config_topic(gateway), b'{"v": 1, "revision": 4, "patients": {"p 1": {}}}')])
        await wait_for(lambda: agent.thresholds.rejected == 1, timeout_s=30)
        assert agent.thresholds.config.revision == 3  # the bad message changed nothing
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        agent.spool.close()
        publish(host, int(port), [(config_topic(gateway), b"")], retain=True)  # leave the broker clean

    # 93, 92, 91, 92, 93 ...: inside the default band (spo2 < 90) and never a step off a line.
    values = [93.0, 92.0, 91.0, 92.0, 93.0, 94.0, 93.0, 92.0, 91.0, 92.0] * 3
    times = [T0 + i * 10**9 for i in range(len(values))]
    kept_times, kept_values = _compressed_spo2(agent, values)
    assert step_crossings(kept_times, kept_values, [92.5]) == step_crossings(times, values, [92.5])

    # A restart while the broker is out of reach compresses with the saved thresholds at once.
    offline = _agent(gateway, f"mqtt://127.0.0.1:{_free_port()}", tmp_path / "spool.db")
    try:
        assert offline.thresholds.config == agent.thresholds.config
        kept_times, kept_values = _compressed_spo2(offline, values)
        assert step_crossings(kept_times, kept_values, [92.5]) == step_crossings(times, values, [92.5])
    finally:
        offline.spool.close()
    # Without them the same readings lose crossings (the test above would catch a missing apply).
    fresh = _agent(gateway, stack.mqtt_url, tmp_path / "other-spool.db")
    try:
        kept_times, kept_values = _compressed_spo2(fresh, values)
        assert step_crossings(kept_times, kept_values, [92.5]) != step_crossings(times, values, [92.5])
    finally:
        fresh.spool.close()
