"""A virtual Nonin oximeter on a pty -> edge agent (serial transport) -> Mosquitto -> ingest -> InfluxDB."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from cloud.timeseries import NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT
from device_profiles import load_library
from device_profiles.registry import default_registry
from edge.agent import EdgeAgent
from edge.config import DeviceConfig, GatewayConfig
from edge.transports import TransportRegistry
from edge.transports.builtin import register_builtins
from simulators.devices.pty_serial import NONIN_PACKET_PERIOD_S, PtySerialDevice, nonin_xpod_packets
from tests.integration.helpers import count_points, wait_for
from vitals.topics import events_topic

pytestmark = pytest.mark.integration

SAMPLES_PER_PACKET = 27  # 25 pleth values, the pulse rate and the SpO2


class EventListener:
    """Collects the gateway's events from the broker (what a cloud operator would see)."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda _c, _u, message: self.events.append(json.loads(message.payload))
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.on_connect = lambda client, *_args: client.subscribe(topic, qos=1)
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("no SUBACK from the broker")

    def link_events(self, device: str) -> list[str]:
        """The device's ``attached`` and ``lost`` events, in order."""
        return [e["kind"] for e in list(self.events) if e.get("device") == device and e["kind"] in ("attached", "lost")]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def listen(stack: Any) -> Iterator[Callable[[str], EventListener]]:
    listeners: list[EventListener] = []

    def make(topic: str) -> EventListener:
        listeners.append(EventListener(stack.mosquitto.host, stack.mosquitto.port, topic))
        return listeners[-1]

    yield make
    for listener in listeners:
        listener.close()


async def test_every_sample_from_a_virtual_serial_oximeter_is_stored_once_across_an_unplug(
        stack: Any, cloud: Any, unique_name: Callable[[str], str], tmp_path: Path,
        listen: Callable[[str], EventListener]) -> None:
    gateway, patient = unique_name("gw"), unique_name("patient")
    events = listen(events_topic(gateway))
    port = tmp_path / "ttyXPOD"  # a stable name, like /dev/serial/by-id/..., that survives re-plugging
    device_config = DeviceConfig("xpod-1", patient, "nonin.xpod", "serial", str(port),
                                 {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2})
    config = GatewayConfig(gateway=gateway, mqtt_url=stack.mqtt_url, spool=str(tmp_path / "spool.db"),
                           batch_interval_s=0.25, devices=(device_config,))
    transports = TransportRegistry()
    register_builtins(transports)
    agent = EdgeAgent(config, profiles=load_library(), decoders=default_registry(), transports=transports)

    virtual = PtySerialDevice(nonin_xpod_packets(18), period_s=NONIN_PACKET_PERIOD_S, link=port)
    virtual.plug()
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    sending: asyncio.Task[None] | None = None
    try:
        await wait_for(lambda: events.link_events("xpod-1") == ["attached"])
        sending = asyncio.create_task(virtual.run())
        await wait_for(lambda: agent.stats.payloads >= 6)
        virtual.unplug()  # the USB adapter is pulled out...
        await wait_for(lambda: events.link_events("xpod-1") == ["attached", "lost"])
        virtual.plug()  # ... and put back: the agent must find the port again by itself
        await wait_for(lambda: events.link_events("xpod-1") == ["attached", "lost", "attached"])
        await asyncio.wait_for(virtual.finished.wait(), 30)
        await asyncio.sleep(0.5)  # let the last packet be read; the counts below do not depend on it
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
        if sending is not None:
            sending.cancel()
        virtual.close()

    stats = agent.stats
    assert stats.decode_errors == 0
    assert stats.payloads >= 9  # 18 sent, some lost while unplugged
    assert stats.samples_decoded == SAMPLES_PER_PACKET * stats.payloads
    assert stats.samples_spooled == stats.samples_decoded  # no pipeline: everything decoded is sent
    published = agent.publisher.published_samples
    assert published == stats.samples_spooled
    assert len(agent.spool) == 0
    await wait_for(lambda: cloud.stats.stored_samples == published, timeout_s=30)
    stored = {}
    for measurement, metric in ((WAVEFORM_MEASUREMENT, "ppg"), (NUMERIC_MEASUREMENT, "spo2"),
                                (NUMERIC_MEASUREMENT, "pulse_rate")):
        where = f"\"patient\" = '{patient}' AND \"metric\" = '{metric}'"
        stored[metric] = await count_points(cloud.influx, measurement, where)
    assert stored == {"ppg": 25 * stats.payloads, "spo2": stats.payloads, "pulse_rate": stats.payloads}
    assert sum(stored.values()) == published
