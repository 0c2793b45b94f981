"""Helpers for integration tests: publish batches, wait for ingest, count points in InfluxDB."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitals.codec import encode_batch
from vitals.samples import Batch, Sample, Stream
from vitals.topics import data_topic

__all__ = ["count_points", "numeric_batch", "publish", "publish_batches", "wait_for"]


def numeric_batch(gateway: str, seq: int, patient: str, metric: str, unit: str, start_ns: int,
                  values: list[float], step_s: float = 1.0) -> Batch:
    """A batch of one irregular stream with ``values`` ``step_s`` apart from ``start_ns``."""
    samples = [Sample(metric, start_ns + int(i * step_s * 1e9), v) for i, v in enumerate(values)]
    return Batch(gateway, seq, patient, "dev-1", "test.device", (Stream.from_samples(metric, unit, samples),))


def publish(host: str, port: int, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
    """Publish ``(topic, payload)`` pairs at QoS 1 (retained if asked) and wait for every PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def publish_batches(host: str, port: int, batches: list[Batch]) -> None:
    """Encode and publish batches on their gateways' data topics."""
    publish(host, port, [(data_topic(b.gateway), encode_batch(b)) for b in batches])


async def wait_for(predicate: Any, timeout_s: float = 15.0, interval_s: float = 0.1) -> None:
    """Poll an (async or sync) predicate until it is truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


async def count_points(influx: Any, measurement: str = "vitals", where: str = "") -> int:
    """``SELECT count(value)`` over a measurement, with an optional InfluxQL WHERE clause."""
    clause = f" WHERE {where}" if where else ""
    series = await influx.query(f'SELECT count("value") FROM "{measurement}"{clause}')
    return int(series[0]["values"][0][1]) if series else 0
