"""The HTTP API over a temp SQLite store and a fake InfluxDB (httpx.MockTransport), driven in-process."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cloud.api import create_app
from cloud.ingest import IngestStats
from cloud.rules import AlertChange
from cloud.store import Store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, clinician, security_for

S = 10**9
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
T0 = int(NOW.timestamp()) * S - 3600 * S


class FakeInflux:
    """Answers /ping and /query; remembers each query's parameters."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.queries: list[httpx.QueryParams] = []
        self.up = True

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ping":
            return httpx.Response(204 if self.up else 503)
        assert request.url.path == "/query" and request.method == "GET"
        self.queries.append(request.url.params)
        if not self.up:
            return httpx.Response(500, text="down")
        series = [{"name": "vitals", "columns": ["time", "value", "quality"], "values": self.rows}]
        return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series if self.rows else []}]})


@pytest.fixture
def fake() -> FakeInflux:
    return FakeInflux()


@pytest.fixture
async def api(store: Store, fake: FakeInflux) -> AsyncIterator[httpx.AsyncClient]:
    stats = IngestStats(stored_batches=3, stored_samples=30, duplicates=1, rejected=2)
    stats.rejected_by_reason["decode"] = 2
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(fake.handle))
    security = security_for(store, clock=lambda: NOW)
    app = create_app(store, influx, stats=lambda: stats, clock=lambda: NOW, security=security)
    add_user(security, "admin", "admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                                 headers=clinician(security, ["pt-1", "pt-2"])) as client:
        client.admin_headers = bearer(security, "admin")  # type: ignore[attr-defined]
        yield client
    await influx.aclose()


def _alert(patient: str = "pt-1", start_s: int = 0) -> AlertChange:
    return AlertChange(
        rule="spo2_low_sustained", patient=patient, metric="spo2", severity="high",
        episode_start_ns=T0 + start_s * S, fired_ns=T0 + (start_s + 60) * S, last_ns=T0 + (start_s + 90) * S,
        worst_value=84.0, threshold=90.0, message="spo2 below 90 % for 90 s (worst 84 %)", state="open",
    )


# -- vitals -------------------------------------------------------------------------------------------


async def test_vitals_are_read_back_with_bound_parameters(api: httpx.AsyncClient, fake: FakeInflux) -> None:
    fake.rows = [[T0, 97.0, 0], [T0 + S, 96.0, None]]
    response = await api.get("/api/v1/patients/pt-1/vitals",
                             params={"metric": "spo2", "start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "patient": "pt-1", "metric": "spo2", "unit": "%",
        "start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z", "truncated": False,
        "points": [
            {"time": "2024-05-01T11:00:00Z", "time_ns": T0, "value": 97.0, "quality": 0},
            {"time": "2024-05-01T11:00:01Z", "time_ns": T0 + S, "value": 96.0, "quality": 0},
        ],
    }
    [query] = fake.queries
    assert query["q"] == (
        'SELECT "value", "quality" FROM "vitals" WHERE "patient" = $patient AND "metric" = $metric '
        "AND time >= $start AND time <= $end ORDER BY time ASC LIMIT 10001"
    )
    assert json.loads(query["params"]) == {
        "patient": "pt-1", "metric": "spo2", "start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z",
    }
    assert (query["db"], query["epoch"]) == ("vb", "ns")


async def test_waveforms_are_read_from_their_measurement_and_truncated(api: httpx.AsyncClient,
                                                                       fake: FakeInflux) -> None:
    fake.rows = [[T0 + i * 4_000_000, 0.001 * i, 0] for i in range(3)]
    response = await api.get("/api/v1/patients/pt-1/vitals", params={"metric": "ecg", "limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["truncated"] is True and len(body["points"]) == 2 and body["unit"] == "mV"
    assert 'FROM "waveforms"' in fake.queries[0]["q"] and fake.queries[0]["q"].endswith("LIMIT 3")


async def test_default_range_is_the_last_day(api: httpx.AsyncClient, fake: FakeInflux) -> None:
    response = await api.get("/api/v1/patients/pt-1/vitals", params={"metric": "heart_rate"})
    assert response.status_code == 200
    assert response.json()["points"] == []
    assert json.loads(fake.queries[0]["params"])["start"] == "2024-04-30T12:00:00Z"
    assert json.loads(fake.queries[0]["params"])["end"] == "2024-05-01T12:00:00Z"


async def test_naive_times_are_taken_as_utc(api: httpx.AsyncClient, fake: FakeInflux) -> None:
    response = await api.get("/api/v1/patients/pt-1/vitals",
                             params={"metric": "spo2", "start": "2024-05-01T10:00:00", "end": "2024-05-01T11:00:00"})
    assert response.status_code == 200
    assert json.loads(fake.queries[0]["params"])["start"] == "2024-05-01T10:00:00Z"


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        ("/api/v1/patients/pt-1/vitals", {"metric": "spo3"}, "unknown metric 'spo3'"),
        ("/api/v1/patients/pt-1/vitals",
         {"metric": "spo2", "start": "2024-05-01T11:00:00Z", "end": "2024-05-01T10:00:00Z"},
         "start must not be after end"),
    ],
)
async def test_bad_vitals_requests_get_422_with_a_reason(api: httpx.AsyncClient, fake: FakeInflux, path: str,
                                                         params: dict[str, str], detail: str) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 422
    assert detail in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "invalid"
    assert fake.queries == []


async def test_a_patient_id_that_is_no_identifier_is_not_found(api: httpx.AsyncClient, fake: FakeInflux) -> None:
    response = await api.get("/api/v1/patients/bad%20id/vitals", params={"metric": "spo2"})
    assert (response.status_code, response.json()) == (404, {"error": {"code": "not_found", "message": "not found"}})
    assert fake.queries == []


@pytest.mark.parametrize("params", [{}, {"metric": "spo2", "limit": "0"}, {"metric": "spo2", "start": "yesterday"}])
async def test_malformed_query_parameters_get_422(api: httpx.AsyncClient, fake: FakeInflux,
                                                   params: dict[str, str]) -> None:
    response = await api.get("/api/v1/patients/pt-1/vitals", params=params)
    assert response.status_code == 422
    assert fake.queries == []


async def test_influx_down_gives_503_and_degraded_health(api: httpx.AsyncClient, fake: FakeInflux) -> None:
    healthy = await api.get("/api/v1/health")
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok", "influxdb": True, "database": True})
    fake.up = False
    response = await api.get("/api/v1/patients/pt-1/vitals", params={"metric": "spo2"})
    assert response.status_code == 503
    assert "time-series store unavailable" in response.json()["error"]["message"]
    for path in ("/api/v1/health", "/health"):
        degraded = await api.get(path)
        assert (degraded.status_code, degraded.json()) == (503, {"status": "degraded", "influxdb": False,
                                                                 "database": True})


async def test_health_reports_the_process_tasks_and_metrics_are_served(store: Store, fake: FakeInflux) -> None:
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    Counter("vb_test_things", "things", registry=registry).inc(3)
    ready = {"value": True}
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(fake.handle))
    app = create_app(store, influx, health=lambda: (ready["value"], {"ingest": {"stalled": not ready["value"]}}),
                     registry=registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        assert (await client.get("/health")).status_code == 200
        ready["value"] = False
        stalled = await client.get("/health")
        assert stalled.status_code == 503 and stalled.json()["ingest"] == {"stalled": True}
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and "vb_test_things_total 3.0" in metrics.text
    await influx.aclose()


# -- alerts -------------------------------------------------------------------------------------------


async def test_alerts_list_and_filters(api: httpx.AsyncClient, store: Store) -> None:
    store.apply_alert_changes([_alert("pt-1"), _alert("pt-2", start_s=600)])
    response = await api.get("/api/v1/alerts")
    assert response.status_code == 200
    body = response.json()
    assert [a["patient"] for a in body] == ["pt-2", "pt-1"]
    first = body[1]
    assert first == {
        "id": first["id"], "rule": "spo2_low_sustained", "patient": "pt-1", "metric": "spo2", "severity": "high",
        "state": "firing", "message": "spo2 below 90 % for 90 s (worst 84 %)", "threshold": 90.0,
        "worst_value": 84.0, "episode_start": "2024-05-01T11:00:00Z", "fired": "2024-05-01T11:01:00Z",
        "last": "2024-05-01T11:01:30Z", "resolved": None, "acknowledged_at": None, "acknowledged_by": None,
        "late": False, "kind": "value", "episodes": 1, "resolved_at": None, "resolved_by": None, "resolution": None,
        "escalation_step": 1, "rule_version": None, "settings_version": None,
    }
    only = (await api.get("/api/v1/alerts", params={"patient": "pt-1"})).json()
    assert [a["patient"] for a in only] == ["pt-1"]
    assert (await api.get("/api/v1/alerts", params={"state": "resolved"})).json() == []
    assert len((await api.get("/api/v1/alerts", params={"limit": 1})).json()) == 1


async def test_alerts_bad_state_gets_422(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/alerts", params={"state": "gone"})).status_code == 422


async def test_acknowledge(api: httpx.AsyncClient, store: Store) -> None:
    [record] = store.apply_alert_changes([_alert()])
    response = await api.post(f"/api/v1/alerts/{record.id}/ack")
    assert response.status_code == 200
    assert (response.json()["acknowledged_by"], response.json()["acknowledged_at"]) == (
        "dr.test", "2024-05-01T12:00:00Z")
    assert store.alerts()[0].acknowledged_by == "dr.test"
    again = await api.get("/api/v1/alerts")
    assert again.json()[0]["acknowledged_at"] == "2024-05-01T12:00:00Z"  # read back from the store: still UTC


async def test_acknowledge_unknown_alert_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/alerts/999/ack")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "not found"}}


@pytest.mark.parametrize("alert_id", ["0", str(2**63), "-1", "x"])
async def test_alert_ids_out_of_range_get_422(api: httpx.AsyncClient, alert_id: str) -> None:
    response = await api.post(f"/api/v1/alerts/{alert_id}/ack")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"


# -- ingest health --------------------------------------------------------------------------------------


async def test_ingest_stats_and_dead_letters(api: httpx.AsyncClient, store: Store) -> None:
    store.add_dead_letter("vb/v1/gw/data", "decode: not valid CBOR", b"\xde\xad" * 40, NOW)
    admin = api.admin_headers  # type: ignore[attr-defined]
    stats = (await api.get("/api/v1/ingest/stats", headers=admin)).json()
    assert stats == {"stored_batches": 3, "stored_samples": 30, "duplicates": 1, "rejected": 2,
                     "rejected_by_reason": {"decode": 2}, "alerts_opened": 0, "dead_letters": 1,
                     "ingested_batches": 0, "ingested_samples": 0}
    [letter] = (await api.get("/api/v1/dead-letters", headers=admin)).json()
    assert (letter["topic"], letter["reason"], letter["size"]) == ("vb/v1/gw/data", "decode: not valid CBOR", 80)
    assert letter["payload_hex"] == "dead" * 32
