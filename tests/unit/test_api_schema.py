"""Schemathesis against the API's own OpenAPI spec, signed in as each role: no 5xx, every response as the
spec says (status, content type, body). Out-of-range ids (2^63) are among what it tries."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cloud.api import create_app
from cloud.auth.policy import route_permissions
from cloud.registry import Gateway
from cloud.rules import AlertChange
from cloud.store import HealthUpdate, IngestCommit, open_store
from cloud.timeseries import InfluxV1Client
from tests.asgi_stream import StreamCall
from tests.auth_helpers import add_user, bearer, security_for
from vitals.health import decode_status

S = 10**9
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
ROLES = ("admin", "doctor", "family")
ENDLESS = {("GET", "/api/v1/alerts/stream")}  # a stream never ends: test_the_alert_stream_keeps_its_spec
UNDOCUMENTED = {"/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class World:
    app: FastAPI
    headers: dict[str, dict[str, str]]


def _influx(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/query":
        rows = [[int(NOW.timestamp()) * S, 97.0, 0]]
        series = [{"name": "vitals", "columns": ["time", "value", "quality"], "values": rows}]
        return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series}]})
    return httpx.Response(204)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('schema') / 'cloud.db'}")
    security = security_for(store, clock=lambda: NOW)
    add_user(security, "admin", "admin")
    add_user(security, "doctor", "doctor", care=["p1", "p2"])
    add_user(security, "family", "family", family=["p1"])
    security.registry.add_gateway(Gateway("gw-1", "home", ("p1",)))
    start = int(NOW.timestamp()) * S - 3600 * S
    store.apply_alert_changes([AlertChange(
        rule="spo2_low_sustained", patient="p1", metric="spo2", severity="high", episode_start_ns=start,
        fired_ns=start + 60 * S, last_ns=start + 90 * S, worst_value=84.0, threshold=90.0, message="low",
        state="open")])
    store.acknowledge(1, "doctor", NOW)
    birth = json.dumps({"gateway": "gw-1", "state": "online", "time": NOW.timestamp(), "connection": NOW.timestamp(),
                        "version": "1.0.0", "epoch": "ep1"}).encode()
    store.commit_ingest(IngestCommit(at=NOW, health=HealthUpdate([decode_status(birth, "gw-1")], [], ())))
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(_influx))
    app = create_app(store, influx, clock=lambda: NOW, security=security)
    yield World(app, {role: bearer(security, role) for role in ROLES})
    store.close()


def test_the_api_keeps_its_spec_for_every_role(world: World) -> None:
    api = schemathesis.openapi.from_asgi("/api/openapi.json", world.app)
    operations = [operation for operation in (result.ok() for result in api.get_all_operations())
                  if (operation.method.upper(), operation.path) not in ENDLESS]
    # Every API route is in the spec and tried here (the endless stream in its own test below).
    routes = {(method, path) for method, path, _ in route_permissions(world.app)
              if path.startswith("/api/") and path not in UNDOCUMENTED}
    tried = {(operation.method.upper(), operation.path) for operation in operations}
    assert {route for route in tried if route[1].startswith("/api/")} | ENDLESS == routes

    statuses: Counter[int] = Counter()
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            for role in ROLES:
                response = case.call_and_validate(headers=dict(world.headers[role]), checks=CHECKS)
                statuses[response.status_code] += 1
            statuses[case.call_and_validate(checks=CHECKS).status_code] += 1  # and signed out

        check()
    assert {200, 401, 403, 404, 422} <= set(statuses), statuses


async def test_an_alert_id_of_2_to_the_63_is_a_422_not_a_500(world: World) -> None:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        for path in (f"/api/v1/alerts/{2**63}/ack", f"/api/v1/alerts/{2**63}/seen"):
            response = await client.post(path, headers=world.headers["doctor"])
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(("role", "status"), [("doctor", 200), ("family", 200), ("admin", 403), (None, 401)])
async def test_the_alert_stream_keeps_its_spec(world: World, role: str | None, status: int) -> None:
    headers = world.headers[role] if role is not None else {}
    async with StreamCall(world.app, "/api/v1/alerts/stream", headers) as call:
        if call.status == 200:
            assert await call.chunk() == b"retry: 2000\n\n"
    response = call.response()
    assert response.status_code == status
    if status == 200:
        assert response.headers["content-type"].startswith("text/event-stream")
    else:
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()["error"]) == {"code", "message"}
