"""Cloud ingest against real Mosquitto and real influxd."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth_helpers import clinician
from tests.integration.helpers import count_points, numeric_batch, publish, publish_batches, wait_for
from vitals.codec import encode_batch
from vitals.topics import data_topic

pytestmark = pytest.mark.integration


def _ago(seconds: float) -> int:
    return time.time_ns() - int(seconds * 1e9)


async def test_every_published_sample_becomes_exactly_one_point(stack: Any, cloud: Any,
                                                                 unique_name: Any) -> None:
    gateway = unique_name("gw")
    batches = [
        numeric_batch(gateway, seq, f"{gateway}-p{seq % 3}", "heart_rate", "/min",
                      _ago(3600) + seq * 10**11, [60.0 + (i % 20) for i in range(50 + seq)])
        for seq in range(12)
    ]
    expected = sum(b.sample_count for b in batches)
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, batches)
    await wait_for(lambda: cloud.stats.stored_batches == len(batches))
    assert await count_points(cloud.influx) == expected
    # A replay of everything (a gateway reconnecting after a crash) changes nothing.
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, batches)
    await wait_for(lambda: cloud.stats.duplicates == len(batches))
    assert await count_points(cloud.influx) == expected
    assert cloud.stats.stored_samples == expected


async def test_hypoxic_patient_gets_one_alert_and_stable_patients_none(stack: Any, cloud: Any,
                                                                       unique_name: Any) -> None:
    gateway = unique_name("gw")
    start = _ago(1800)
    stable = [96.0, 97.0, 95.0, 96.0] * 150
    hypoxic = [95.0] * 200 + [93.0, 91.0, 89.0] + [87.0, 86.0, 88.0] * 100 + [95.0] * 97
    batches = []
    for seq, (patient, series) in enumerate([("stable-a", stable), ("stable-b", stable), ("hypoxic", hypoxic)]):
        batches.append(numeric_batch(gateway, seq, patient, "spo2", "%", start, series))
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, batches)
    await wait_for(lambda: cloud.stats.stored_batches == 3)
    headers = clinician(cloud.security, ["stable-a", "stable-b", "hypoxic"])
    async with httpx.AsyncClient(base_url=cloud.api_url, headers=headers) as client:
        alerts = (await client.get("/api/v1/alerts")).json()
        assert [a["patient"] for a in alerts] == ["hypoxic"]
        assert alerts[0]["rule"] == "spo2_low_sustained"
        assert alerts[0]["worst_value"] == 86.0
        assert alerts[0]["state"] == "resolved"
        vitals = (await client.get("/api/v1/patients/hypoxic/vitals",
                                   params={"metric": "spo2", "start": "2000-01-01T00:00:00Z"})).json()
        assert [p["value"] for p in vitals["points"]] == hypoxic


async def test_malformed_payloads_are_dead_lettered_and_valid_traffic_flows(stack: Any, cloud: Any,
                                                                            unique_name: Any) -> None:
    gateway = unique_name("gw")
    host, port = stack.mosquitto.host, str(stack.mosquitto.port)
    good = numeric_batch(gateway, 1, "p1", "spo2", "%", _ago(600), [97.0] * 30)
    payload = encode_batch(good)
    impossible = encode_batch(numeric_batch(gateway, 2, "p1", "spo2", "%", _ago(600), [97.0, 250.0]))
    wrong_version = payload.replace(b"av\x01", b"av\x07", 1)
    assert wrong_version != payload
    oversized = payload + bytes(1_500_000)
    bad_payloads = [b"garbage", payload[: len(payload) // 2], wrong_version, impossible, oversized]
    for bad in bad_payloads:
        subprocess.run(["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", data_topic(gateway), "-s"],
                       input=bad, check=True, timeout=10)
    publish(stack.mosquitto.host, stack.mosquitto.port, [(data_topic(gateway), payload)])
    # A batch published on another gateway's topic is refused too.
    publish(stack.mosquitto.host, stack.mosquitto.port, [(data_topic(unique_name("other")), payload)])
    await wait_for(lambda: cloud.stats.stored_batches == 1 and cloud.stats.rejected == 6)
    reasons = cloud.stats.rejected_by_reason
    assert reasons == {"decode": 4, "implausible": 1, "gateway": 1}
    letters = cloud.store.dead_letters()
    assert len(letters) == 6
    assert any("over the 1048576 byte limit" in letter.reason for letter in letters)
    assert any("unsupported wire version 7" in letter.reason for letter in letters)
    assert any("outside the plausible range" in letter.reason for letter in letters)
    assert {letter.payload for letter in letters} >= set(bad_payloads)
    assert await count_points(cloud.influx) == 30


async def test_batches_published_while_ingest_is_down_are_not_lost(stack: Any, tmp_path: Path,
                                                                   unique_name: Any) -> None:
    from cloud.service import CloudConfig, CloudService
    from vitalbridge.stack import free_port

    config = CloudConfig(mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=unique_name("vbtest"),
                         database_url=f"sqlite:///{tmp_path / 'c.db'}", http_port=free_port(),
                         client_id=unique_name("ingest-"), registry="off",
                         shared_group=unique_name("group-"))
    gateway = unique_name("gw")
    first = CloudService(config)
    await first.start()  # creates the persistent session
    await first.stop()
    batches = [numeric_batch(gateway, seq, "p1", "body_temperature", "Cel", _ago(900) + seq * 10**10,
                             [36.5, 36.6, 36.7]) for seq in range(5)]
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, batches)
    second = CloudService(config)
    await second.start()
    try:
        await wait_for(lambda: second.stats.stored_batches == 5)
        assert await count_points(second.influx) == 15
    finally:
        await second.stop()
