"""The alerts API router: detail, acknowledge, resolve, silences, the notification log, ids, time zones, SSE."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from cloud.alerting import AlertingContext, AlertingPolicy
from cloud.api._alerts import alerts_router
from cloud.rules import AlertChange
from cloud.store import Store, open_store
from vitalbridge.stack import free_port

S = 10**9
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
E0 = int(NOW.timestamp()) * S - 3600 * S
POLICY = AlertingPolicy.model_validate({"steps": [{"after_min": 0, "notify": ["doctor"]}],
                                        "recipients": {"*": {"doctor": ["dr@example.org"]}}})


def _change(state: str = "open", rule: str = "spo2_low", patient: str = "pt-1") -> AlertChange:
    return AlertChange(rule=rule, patient=patient, metric="spo2", severity="urgent", episode_start_ns=E0,
                       fired_ns=E0 + 60 * S, last_ns=E0 + 90 * S, worst_value=84.0, threshold=90.0,
                       message="spo2 below 90 % for 90 s", state=state)  # type: ignore[arg-type]


@pytest.fixture
def alert_store(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}", AlertingContext(POLICY))
    try:
        yield store
    finally:
        store.close()


def _app(store: Store) -> FastAPI:
    app = FastAPI()
    app.include_router(alerts_router(store, lambda: NOW, stream_poll_s=0.05))
    return app


@pytest.fixture
async def api(alert_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(alert_store))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def test_an_alert_reads_back_with_its_transitions_and_notifications(api: httpx.AsyncClient,
                                                                          alert_store: Store) -> None:
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    acked = await api.post(f"/api/v1/alerts/{alert.id}/ack", json={"by": "dr.house"})
    assert acked.status_code == 200
    assert (acked.json()["state"], acked.json()["acknowledged_at"]) == ("acknowledged", "2024-05-01T12:00:00Z")
    detail = (await api.get(f"/api/v1/alerts/{alert.id}")).json()
    assert detail["acknowledged_at"] == "2024-05-01T12:00:00Z"  # read back from SQLite with its zone
    assert [(t["from_state"], t["to_state"], t["actor"]) for t in detail["transitions"]] == [
        (None, "firing", "rule:spo2_low"), ("firing", "acknowledged", "dr.house")]
    assert [(n["channel"], n["address"], n["status"], n["reason"]) for n in detail["notifications"]] == [
        ("email", "dr@example.org", "cancelled", "acknowledged before it was sent")]


async def test_filters_by_state_including_unacknowledged_and_by_severity(api: httpx.AsyncClient,
                                                                         alert_store: Store) -> None:
    alert_store.apply_alert_changes([_change(), _change(rule="hr_high")], at=NOW)
    first = alert_store.alerts()[1]
    await api.post(f"/api/v1/alerts/{first.id}/ack", json={"by": "dr.house"})
    unacked = (await api.get("/api/v1/alerts", params={"state": "unacknowledged"})).json()
    assert [a["rule"] for a in unacked] == ["hr_high"]
    assert len((await api.get("/api/v1/alerts", params={"state": "open"})).json()) == 2
    assert len((await api.get("/api/v1/alerts", params={"severity": "urgent"})).json()) == 2
    assert (await api.get("/api/v1/alerts", params={"severity": "info"})).json() == []


async def test_resolve_with_a_reason_and_conflicts(api: httpx.AsyncClient, alert_store: Store) -> None:
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    bad = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"by": "dr.house", "reason": "bored"})
    assert bad.status_code == 422
    done = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"by": "dr.house", "reason": "false_alarm"})
    assert done.status_code == 200
    assert (done.json()["state"], done.json()["resolution"], done.json()["resolved_by"]) == (
        "resolved", "false_alarm", "dr.house")
    again = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"by": "dr.house", "reason": "actioned"})
    assert again.status_code == 409 and again.json()["detail"] == f"alert {alert.id}: the alert is already resolved"
    [pending] = alert_store.apply_alert_changes([_change("pending", rule="bp_high")], at=NOW)
    refused = await api.post(f"/api/v1/alerts/{pending.id}/ack", json={"by": "dr.house"})
    assert refused.status_code == 409 and "pending" in refused.json()["detail"]


@pytest.mark.parametrize("alert_id, status", [(2**63, 422), (2**63 - 1, 404), (2**40, 404), (0, 422), (-1, 422),
                                              (99, 404)])
async def test_out_of_range_ids_are_404_or_422_never_500(api: httpx.AsyncClient, alert_id: int, status: int) -> None:
    assert (await api.get(f"/api/v1/alerts/{alert_id}")).status_code == status
    assert (await api.post(f"/api/v1/alerts/{alert_id}/ack", json={"by": "x"})).status_code == status
    resolve = await api.post(f"/api/v1/alerts/{alert_id}/resolve", json={"by": "x", "reason": "actioned"})
    assert resolve.status_code == status
    delete = await api.request("DELETE", f"/api/v1/silences/{alert_id}", json={"by": "x"})
    assert delete.status_code == status
    log = await api.get("/api/v1/notifications", params={"alert_id": alert_id})
    assert log.status_code == (422 if status == 422 else 200)


async def test_silences_are_created_listed_and_deleted(api: httpx.AsyncClient, alert_store: Store) -> None:
    created = await api.post("/api/v1/silences", json={"patient": "pt-1", "metric": "spo2", "duration_min": 120,
                                                       "reason": "in hospital", "by": "dr.house"})
    assert created.status_code == 201
    silence = created.json()
    assert (silence["starts_at"], silence["ends_at"], silence["created_by"]) == (
        "2024-05-01T12:00:00Z", "2024-05-01T14:00:00Z", "dr.house")
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    assert {i.status for i in alert_store.notification_items(alert.id)} == {"suppressed"}
    assert [s["id"] for s in (await api.get("/api/v1/silences", params={"active": True})).json()] == [silence["id"]]
    deleted = await api.request("DELETE", f"/api/v1/silences/{silence['id']}", json={"by": "dr.who"})
    assert deleted.status_code == 200 and deleted.json()["deleted_by"] == "dr.who"
    assert (await api.get("/api/v1/silences", params={"active": True})).json() == []
    assert len((await api.get("/api/v1/silences")).json()) == 1


@pytest.mark.parametrize("body", [
    {"patient": "pt-1", "reason": "r", "by": "x"},  # no end
    {"patient": "pt-1", "reason": "r", "by": "x", "duration_min": 5, "ends_at": "2024-05-02T00:00:00Z"},
    {"patient": "pt-1", "reason": "r", "by": "x", "ends_at": "2024-05-02T00:00:00"},  # no zone
    {"patient": "pt-1", "reason": "r", "by": "x", "ends_at": "2024-04-01T00:00:00Z"},  # before it starts
    {"patient": "no spaces", "reason": "r", "by": "x", "duration_min": 5},
    {"patient": "pt-1", "reason": "", "by": "x", "duration_min": 5},
])
async def test_bad_silences_are_refused_with_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await api.post("/api/v1/silences", json=body)).status_code == 422


async def test_the_notification_log_shows_attempts_and_errors(api: httpx.AsyncClient, alert_store: Store) -> None:
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    [message] = alert_store.claim_deliveries(NOW + dt.timedelta(minutes=1), lease=dt.timedelta(minutes=1),
                                             group_window=dt.timedelta(seconds=10), limit=10)
    alert_store.mark_failed(message.delivery_id, NOW, "SMTP 127.0.0.1:25: refused", NOW + dt.timedelta(minutes=5))
    [entry] = (await api.get("/api/v1/notifications", params={"patient": "pt-1"})).json()
    assert (entry["status"], entry["attempts"], entry["last_error"], entry["alert_ids"]) == (
        "pending", 1, "SMTP 127.0.0.1:25: refused", [alert.id])
    assert entry["next_attempt_at"] == "2024-05-01T12:05:00Z"
    assert (await api.get("/api/v1/notifications", params={"status": "sent"})).json() == []


async def test_the_live_stream_sends_each_transition_and_resumes_from_an_id(alert_store: Store) -> None:
    server = uvicorn.Server(uvicorn.Config(_app(alert_store), host="127.0.0.1", port=free_port(),
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{server.config.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            async with client.stream("GET", "/api/v1/alerts/stream") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                [alert] = await asyncio.to_thread(alert_store.apply_alert_changes, [_change()], NOW)
                await asyncio.to_thread(alert_store.acknowledge, alert.id, "dr.house", NOW)
                events = await asyncio.wait_for(_events(lines, 2), timeout=30)
            assert [(e["data"]["from_state"], e["data"]["to_state"]) for e in events] == [
                (None, "firing"), ("firing", "acknowledged")]
            # A client that reconnects with the last id it saw gets only what came after.
            async with client.stream("GET", "/api/v1/alerts/stream",
                                     headers={"Last-Event-ID": events[0]["id"]}) as again:
                [resumed] = await asyncio.wait_for(_events(again.aiter_lines(), 1), timeout=30)
            assert resumed["data"]["to_state"] == "acknowledged" and resumed["event"] == "transition"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def _events(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for line in lines:
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("event: "):
            current["event"] = line[7:]
    return events
