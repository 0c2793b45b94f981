"""A full spool or a full disk, reported upstream: the events reach the broker, the gateway goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device_profiles.registry import DecoderRegistry
from edge.agent import EdgeAgent
from edge.config import DeviceConfig, GatewayConfig
from edge.spool import BatchSpool
from edge.transports import TransportRegistry
from tests.agent_fakes import NoDecoderProfile, never_started
from tests.integration.helpers import wait_for
from vitals.samples import Stream
from vitals.topics import events_topic

pytestmark = pytest.mark.integration


class _Events:
    """The JSON events of one gateway, as a cloud would see them."""

    def __init__(self, url: str, gateway: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, int(port))
        self._client.loop_start()
        self._client.subscribe(events_topic(gateway), qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(json.loads(message.payload))

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self.received if event["kind"] == kind]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _ppg(start_ns: int, count: int = 500) -> Stream:
    noise = np.random.default_rng(start_ns).integers(-100_000, 100_000, count)
    return Stream.regular("ppg", "1", start_ns, 100.0, noise * 1.0, scale=1.0)


def _spo2(start_ns: int, *values: float) -> Stream:
    return Stream("spo2", "%", [start_ns + i * 10**9 for i in range(len(values))], list(values), [0] * len(values))


async def test_quota_drops_and_a_full_disk_are_reported_to_the_cloud_and_the_gateway_goes_on(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("limits-gw-")
    transports = TransportRegistry()
    transports.add("none", never_started)
    config = GatewayConfig(gateway=gateway, mqtt_url=stack.mqtt_url, spool="given-below.db", batch_interval_s=5.0,
                           devices=(DeviceConfig(id="ox-1", patient="p-1", profile="test.oximeter", transport="none"),))
    agent = EdgeAgent(config, profiles={"test.oximeter": NoDecoderProfile()}, decoders=DecoderRegistry(),
                      transports=transports, spool=spool)
    events = _Events(stack.mqtt_url, gateway)
    publisher = asyncio.create_task(agent.publisher.run())
    try:
        await asyncio.wait_for(agent.publisher.connected.wait(), 15)
        now = time.time_ns()
        agent.accept_stream("ox-1", _spo2(now, 97, 96))  # routine
        agent.accept_stream("ox-1", _ppg(now))  # waveform, a batch of its own
        agent.tick()
        agent.accept_stream("ox-1", _spo2(now + 10**10, 80, 79))  # alert: below 90 %
        agent.tick()
        spool.max_bytes = spool.stored_bytes
        agent.accept_stream("ox-1", _spo2(now + 10**11, 97, 97))  # routine: the waveform makes room
        agent.tick()
        await wait_for(lambda: events.kinds("spool_drop"))
        assert [(e["seq"], e["priority"], e["dropped"]) for e in events.kinds("spool_drop")] == [(1, "waveform", 500)]
        pages = int(spool._db.execute("PRAGMA page_count").fetchone()[0])
        spool._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        spool.max_bytes = 10**9
        agent.accept_stream("ox-1", _ppg(now + 10**12, 20_000))
        agent.tick()
        await wait_for(lambda: events.kinds("spool_full"))
        assert events.kinds("spool_full")[0] | {"time": 0} == {
            "gateway": gateway, "kind": "spool_full", "time": 0, "device": "ox-1", "dropped": 20_000,
            "reason": "disk_full"}
        assert agent.stats.spool_full_drops == 20_000 and not publisher.done()
        assert [seq for seq, _ in spool.pending()] == [0, 2, 3]  # the alert reading was never at risk
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        events.close()
