"""Against real Mosquitto and influxd, the registry enforced: a bound patient's data is stored and read back
by their doctor after a real login; an unbound patient, an unknown gateway and a revoked gateway are
dead-lettered; a family member sees only their own patient."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.auth import Role
from cloud.registry import Gateway, Patient
from cloud.service import CloudConfig, CloudService
from tests.auth_helpers import PASSWORD, add_user
from tests.integration.helpers import count_points, numeric_batch, publish_batches, wait_for
from vitalbridge.stack import free_port

pytestmark = pytest.mark.integration


def _ago(seconds: float) -> int:
    return time.time_ns() - int(seconds * 1e9)


@pytest.fixture
async def enforcing(stack: Any, tmp_path: Path, unique_name: Callable[[str], str]) -> AsyncIterator[CloudService]:
    config = CloudConfig(mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=unique_name("vbreg"),
                         database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=free_port(),
                         client_id=unique_name("ingest-"), registry="enforce", registry_cache_s=0.2,
                         auth_secret="s" * 32, shared_group=unique_name("group-"))
    service = CloudService(config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_registry_decides_what_is_stored_and_who_reads_it(stack: Any, enforcing: CloudService,
                                                                    unique_name: Callable[[str], str]) -> None:
    security = enforcing.security
    assert security is not None and enforcing.store is not None and enforcing.influx is not None
    gateway, stranger = unique_name("gw"), unique_name("gw")
    for patient in ("alice", "bob", "carol"):
        security.registry.add_patient(Patient(patient, patient.title()))
    security.registry.add_gateway(Gateway(gateway, "the Smiths", ("alice", "bob")))
    add_user(security, "dr.alice", Role.DOCTOR, care=["alice"])
    add_user(security, "fam.bob", Role.FAMILY, family=["bob"])
    add_user(security, "root", Role.ADMIN)

    start = _ago(600)
    publish_batches(stack.mosquitto.host, stack.mosquitto.port, [
        numeric_batch(gateway, 1, "alice", "spo2", "%", start, [97.0, 96.0, 95.0]),
        numeric_batch(gateway, 2, "bob", "spo2", "%", start, [98.0, 97.0]),
        numeric_batch(gateway, 3, "carol", "spo2", "%", start, [90.0]),  # not bound to this gateway
        numeric_batch(stranger, 1, "alice", "spo2", "%", start, [50.0]),  # a gateway nobody registered
    ])
    await wait_for(lambda: enforcing.stats.stored_batches + enforcing.stats.rejected == 4, timeout_s=30)
    assert enforcing.stats.stored_batches == 2
    assert dict(enforcing.stats.rejected_by_reason) == {"patient": 1, "gateway": 1}
    assert await count_points(enforcing.influx) == 5
    reasons = sorted(letter.reason.split(":")[0] for letter in enforcing.store.dead_letters())
    assert reasons == ["gateway", "patient"]

    async with httpx.AsyncClient(base_url=enforcing.api_url) as client:
        assert (await client.get("/api/v1/alerts")).status_code == 401
        doctor = await _login(client, "dr.alice")
        vitals = await client.get("/api/v1/patients/alice/vitals", headers=doctor,
                                  params={"metric": "spo2", "start": "2000-01-01T00:00:00Z"})
        assert [p["value"] for p in vitals.json()["points"]] == [97.0, 96.0, 95.0]
        assert (await client.get("/api/v1/patients/bob/vitals", headers=doctor,
                                 params={"metric": "spo2"})).status_code == 404
        family = await _login(client, "fam.bob")
        assert (await client.get("/api/v1/patients/bob/vitals", headers=family,
                                 params={"metric": "spo2", "start": "2000-01-01T00:00:00Z"})).status_code == 200
        assert (await client.get("/api/v1/patients/alice/vitals", headers=family,
                                 params={"metric": "spo2"})).status_code == 404
        admin = await _login(client, "root")
        assert (await client.get("/api/v1/patients/alice/vitals", headers=admin,
                                 params={"metric": "spo2"})).status_code == 404
        revoked = await client.post(f"/api/v1/registry/gateways/{gateway}/revoke", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked"] is True
        response = await client.get("/api/v1/audit", headers=admin, params={"patient": "alice"})
        actions = {(row["actor"], row["action"], row["outcome"]) for row in response.json()}
        assert ("dr.alice", "vitals.read", "allowed") in actions
        assert ("fam.bob", "vitals.read", "denied") in actions
        assert ("root", "vitals.read", "denied") in actions
        assert (await client.get("/api/v1/audit/verify", headers=admin)).json()["ok"] is True

    time_revoked = time.monotonic()
    await wait_for(lambda: time.monotonic() - time_revoked > 0.3, timeout_s=5)  # past the registry cache
    publish_batches(stack.mosquitto.host, stack.mosquitto.port,
                    [numeric_batch(gateway, 4, "alice", "spo2", "%", _ago(60), [96.0])])
    await wait_for(lambda: enforcing.stats.rejected == 3, timeout_s=30)
    assert enforcing.stats.rejected_by_reason["gateway"] == 2
    assert await count_points(enforcing.influx) == 5
