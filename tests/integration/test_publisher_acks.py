"""The gateway keeps each batch until the cloud confirms it: real Mosquitto, a test acknowledger.

The acknowledger (tests/integration/acknowledger.py) stands in for the cloud's StoredAck messages.
Fault tests run their own broker (the stack runner's Mosquitto, with persistence) so that restarting
or killing it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.publisher import MqttPublisher, PublisherSettings
from edge.spool import BatchSpool
from tests.integration.acknowledger import Acknowledger
from tests.integration.helpers import numeric_batch, publish, wait_for
from vitalbridge.stack import LocalStack
from vitals.acks import StoredAck, encode_ack
from vitals.codec import encode_batch
from vitals.topics import ack_topic, status_topic

pytestmark = pytest.mark.integration

_HOUR_NS = 3600 * 10**9


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalStack]:
    """A Mosquitto of this test alone (with persistence), to restart or kill."""
    stack = LocalStack(tmp_path / "own-stack", influx=False).start()
    try:
        yield stack
    finally:
        stack.stop()


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("mqtt://").split(":")
    return host, int(port)


def _settings(**overrides: Any) -> PublisherSettings:
    base: dict[str, Any] = {"ack_timeout_s": 60.0, "window": 16, "live_window_s": 5.0,
                            "reconnect_initial_s": 0.05, "reconnect_max_s": 0.5}
    return PublisherSettings(**(base | overrides))


def _append(spool: BatchSpool, gateway: str, *, created_ns: int | None = None, values: int = 3) -> int:
    """Spool one small spo2 batch of ``gateway`` (made at ``created_ns``, default now); its seq."""
    start = time.time_ns()
    batch = numeric_batch(gateway, 0, "patient-1", "spo2", "%", start, [97.0 - i % 5 for i in range(values)])
    batch = dataclasses.replace(batch, epoch=spool.epoch)
    return spool.append(lambda seq: encode_batch(dataclasses.replace(batch, seq=seq)),
                        created_ns=time.time_ns() if created_ns is None else created_ns, samples=values).seq


@contextlib.asynccontextmanager
async def _running(publisher: MqttPublisher) -> AsyncIterator[MqttPublisher]:
    task = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(publisher.connected.wait(), 15)
        yield publisher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _take_over_session(host: str, port: int, gateway: str) -> None:
    """Connect with the gateway's client id: the broker disconnects the gateway, which reconnects."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"vb-gateway-{gateway}", protocol=mqtt.MQTTv5)
    client.connect(host, port, clean_start=False)
    client.loop(0.5)
    client.disconnect()


def _retained_status(host: str, port: int, gateway: str) -> dict[str, Any]:
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, message: got.append(message.payload)
    client.connect(host, port)
    client.subscribe(status_topic(gateway), qos=1)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    assert got, "no retained status"
    return dict(json.loads(got[0]))


async def test_a_confirmed_batch_leaves_and_the_birth_message_carries_the_epoch(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(stack.mqtt_url)
    seqs = [_append(spool, gateway) for _ in range(5)]
    with Acknowledger(host, port, [gateway]) as cloud:
        publisher = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time, settings=_settings())
        async with _running(publisher):
            assert await publisher.flush(30)
            status = _retained_status(host, port, gateway)
        assert cloud.seqs(gateway) == seqs
    assert (publisher.published, publisher.published_samples) == (5, 15)
    assert (publisher.confirmed, publisher.confirmed_samples, publisher.refused) == (5, 15, 0)
    assert len(spool) == 0 and spool.stored_bytes == 0
    assert status["state"] == "online" and status["epoch"] == spool.epoch


async def test_a_batch_the_broker_has_but_the_cloud_never_confirmed_stays_and_is_sent_again(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(stack.mqtt_url)
    seqs = [_append(spool, gateway) for _ in range(3)]
    with Acknowledger(host, port, [gateway], silent=True) as cloud:
        publisher = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time,
                                  settings=_settings(ack_timeout_s=0.3))
        async with _running(publisher):
            await wait_for(lambda: publisher.published == 3)
            assert len(spool) == 3 and publisher.confirmed == 0  # PUBACK is not enough
            # Sent again after each timeout (the resend counter follows the broker's PUBACK).
            await wait_for(lambda: all(cloud.copies(gateway, seq) >= 3 for seq in seqs) and publisher.resent >= 6)
            assert len(spool) == 3
            assert publisher.published == 3  # each batch counted once however often it went
            cloud.silent = False  # the cloud commits at last: the next resend earns the ack
            assert await publisher.flush(30)
    assert publisher.confirmed == 3 and cloud.seqs(gateway) == seqs


async def test_every_unconfirmed_batch_is_sent_again_after_a_reconnect(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(stack.mqtt_url)
    seqs = [_append(spool, gateway) for _ in range(4)]
    with Acknowledger(host, port, [gateway], silent=True) as cloud:
        publisher = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time,
                                  settings=_settings(ack_timeout_s=3600.0))
        async with _running(publisher):
            await wait_for(lambda: publisher.published == 4 and len(cloud.first_arrivals(gateway)) == 4)
            # The broker drops the gateway (another client takes its id over); the cloud stays connected.
            await asyncio.to_thread(_take_over_session, host, port, gateway)
            await wait_for(lambda: all(cloud.copies(gateway, seq) >= 2 for seq in seqs), timeout_s=30)
            assert len(spool) == 4 and publisher.published == 4
            cloud.silent = False
            await asyncio.to_thread(_take_over_session, host, port, gateway)  # reconnect once more
            assert await publisher.flush(30)
    assert publisher.confirmed == 4


async def test_an_acknowledgement_published_while_the_gateway_was_away_arrives_when_it_returns(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(stack.mqtt_url)
    seqs = [_append(spool, gateway) for _ in range(3)]
    first = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time, settings=_settings())
    async with _running(first):
        await wait_for(lambda: first.published == 3)
    # The gateway is away; the cloud acknowledges now. No one else will: only the broker's session has it.
    publish(host, port, [(ack_topic(gateway), encode_ack(StoredAck(spool.epoch, stored=tuple(seqs))))])
    assert len(spool) == 3
    again = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time, settings=_settings())
    async with _running(again):
        await wait_for(lambda: len(spool) == 0)
    assert again.confirmed == 3 and first.confirmed == 0


async def test_acknowledgements_for_another_epoch_and_malformed_ones_are_ignored(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(stack.mqtt_url)
    seqs = [_append(spool, gateway) for _ in range(3)]
    with Acknowledger(host, port, [gateway], silent=True) as cloud:
        publisher = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time, settings=_settings())
        async with _running(publisher):
            await wait_for(lambda: len(cloud.first_arrivals(gateway)) == 3)
            other = "f" * 16 if spool.epoch != "f" * 16 else "e" * 16
            hostile_ranges = [[k << 20, (k << 20) + (1 << 20) - 1] for k in range(4096)]
            publish(host, port, [
                (ack_topic(gateway), encode_ack(StoredAck(other, stored=tuple(seqs)))),
                (ack_topic(gateway), encode_ack(StoredAck("", stored=tuple(seqs)))),  # a legacy epoch
                (ack_topic(gateway), b"\xa3not an ack"),
                (ack_topic(gateway), cbor2.dumps({"v": 1, "ep": spool.epoch, "ok": hostile_ranges})),
            ])
            await wait_for(lambda: publisher.foreign_acks == 2 and publisher.malformed_acks == 2)
            assert len(spool) == 3 and publisher.confirmed == 0 and publisher.connected.is_set()
            publish(host, port, [(ack_topic(gateway), encode_ack(StoredAck(spool.epoch, stored=(seqs[0],),
                                                                           refused=(seqs[1],))))])
            await wait_for(lambda: len(spool) == 1)
            assert (publisher.confirmed, publisher.refused, publisher.refused_samples) == (1, 1, 3)


async def test_live_batches_go_before_the_backlog_which_then_drains_oldest_first(
        stack: Any, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(stack.mqtt_url)
    old = time.time_ns() - _HOUR_NS
    backlog = [_append(spool, gateway, created_ns=old + i * 10**9) for i in range(40)]
    live = [_append(spool, gateway) for _ in range(3)]
    with Acknowledger(host, port, [gateway]) as cloud:
        publisher = MqttPublisher(gateway, stack.mqtt_url, spool, clock_s=time.time,
                                  settings=_settings(window=8, live_window_s=60.0))
        async with _running(publisher):
            assert await publisher.flush(30)
        order = cloud.first_arrivals(gateway)
    assert order == live + backlog
    assert publisher.confirmed == 43


@pytest.mark.parametrize("fault", ["restart", "kill"])
async def test_broker_restarted_or_killed_mid_stream_with_the_cloud_away_loses_and_doubles_nothing(
        fault: str, own_broker: LocalStack, spool: BatchSpool, unique_name: Callable[[str], str]) -> None:
    gateway = unique_name("ack-gw-")
    host, port = _host_port(own_broker.mqtt_url)
    broker = own_broker.mosquitto
    assert broker is not None
    total = 120
    cloud = Acknowledger(host, port, [gateway]).start()
    publisher = MqttPublisher(gateway, own_broker.mqtt_url, spool, clock_s=time.time,
                              settings=_settings(ack_timeout_s=1.0, window=8))
    try:
        async with _running(publisher):
            for index in range(total):
                _append(spool, gateway, values=1 + index % 4)
                publisher.notify()
                if index == 40:
                    await asyncio.to_thread(cloud.stop)  # away: what the gateway publishes now reaches no one
                if index == 60:
                    if fault == "restart":
                        await asyncio.to_thread(broker.restart)
                    else:
                        broker.kill()
                        await asyncio.to_thread(broker.start)
                if index == 90:
                    await asyncio.to_thread(cloud.start)  # the gateway reconnected first; the cloud comes back later
                await asyncio.sleep(0.01)
            assert await publisher.flush(60)
    finally:
        cloud.stop()
    expected_samples = sum(1 + i % 4 for i in range(total))
    assert cloud.seqs(gateway) == list(range(total))  # every batch stored, each once
    assert sum(cloud.stored.values()) == expected_samples
    assert (publisher.confirmed, publisher.confirmed_samples) == (total, expected_samples)
    assert publisher.refused == 0 and len(spool) == 0 and spool.stored_bytes == 0
