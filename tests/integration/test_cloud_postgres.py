"""The whole cloud (ingest + API) with its relational store on a real PostgreSQL, beside real Mosquitto and influxd."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.auth_helpers import clinician
from tests.integration.helpers import count_points, numeric_batch, publish_batches, wait_for
from vitalbridge.stack import LocalStack, PostgreSQL, free_port

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


@pytest.fixture
async def pg_cloud(stack: LocalStack, postgres: PostgreSQL,
                   unique_name: Callable[[str], str]) -> AsyncIterator[Any]:
    from cloud.service import CloudConfig, CloudService

    database = unique_name("cloud")
    config = CloudConfig(mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=unique_name("vbtest"),
                         database_url=postgres.create_database(database), http_port=free_port(),
                         client_id=unique_name("ingest-"), registry="off",
                         shared_group=unique_name("group-"))  # earlier tests' sessions are not its workers
    service = CloudService(config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
        postgres.drop_database(database)


async def test_the_cloud_on_postgresql_stores_once_alerts_once_and_reports_health(
        stack: LocalStack, pg_cloud: Any, unique_name: Callable[[str], str]) -> None:
    assert stack.mosquitto is not None
    gateway = unique_name("gw")
    start = time.time_ns() - 1800 * 10**9
    hypoxic = [95.0] * 200 + [93.0, 91.0, 89.0] + [87.0, 86.0, 88.0] * 100 + [95.0] * 97
    batches = [numeric_batch(gateway, 0, "stable", "spo2", "%", start, [96.0, 97.0] * 300),
               numeric_batch(gateway, 1, "hypoxic", "spo2", "%", start, hypoxic)]
    expected = sum(batch.sample_count for batch in batches)
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, batches)
    await wait_for(lambda: pg_cloud.stats.stored_batches == 2)
    # A replay (a gateway reconnecting after a crash) is recognised from the ingest log in PostgreSQL.
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, batches)
    await wait_for(lambda: pg_cloud.stats.duplicates == 2)
    assert await count_points(pg_cloud.influx) == expected
    assert pg_cloud.store.engine.dialect.name == "postgresql"
    assert pg_cloud.store.ingested_samples() == expected
    (epoch,) = pg_cloud.store.gateway_epochs(gateway)
    assert epoch.high_seq == 1 and epoch.first_seen.utcoffset() is not None
    assert pg_cloud.security is not None
    doctor = clinician(pg_cloud.security, ["stable", "hypoxic"], username="dr.house")
    async with httpx.AsyncClient(base_url=pg_cloud.api_url, headers=doctor) as client:
        alerts = (await client.get("/api/v1/alerts")).json()
        assert [(a["patient"], a["state"], a["worst_value"]) for a in alerts] == [("hypoxic", "resolved", 86.0)]
        acked = await client.post(f"/api/v1/alerts/{alerts[0]['id']}/ack", )
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == "dr.house"
        health = await client.get("/health")
        assert health.status_code == 200 and health.json()["database"] is True
