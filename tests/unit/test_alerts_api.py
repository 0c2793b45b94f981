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
from cloud.auth import install_error_handlers
from cloud.rules import AlertChange
from cloud.store import Store, open_store
from tests.asgi_stream import StreamCall
from tests.auth_helpers import add_user, bearer, security_for
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
    """The router under the policy, with doctors dr.house and dr.who on pt-1's care team, dr.other on pt-2's,
    and family.one of pt-1's family."""
    app = FastAPI()
    app.state.security = security = security_for(store, lambda: NOW)
    install_error_handlers(app)
    add_user(security, "dr.house", "doctor", care=["pt-1"])
    add_user(security, "dr.who", "doctor", care=["pt-1"])
    add_user(security, "dr.other", "doctor", care=["pt-2"])
    add_user(security, "family.one", "family", family=["pt-1"])
    app.include_router(alerts_router(store, lambda: NOW, stream_poll_s=0.05))
    return app


def _as(app: FastAPI, username: str) -> dict[str, str]:
    return bearer(app.state.security, username)


@pytest.fixture
async def api(alert_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as dr.house (``_as(client.app, name)`` for another user's headers)."""
    app = _app(alert_store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test",
                                 headers=_as(app, "dr.house")) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def test_an_alert_reads_back_with_its_transitions_and_notifications(api: httpx.AsyncClient,
                                                                          alert_store: Store) -> None:
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    acked = await api.post(f"/api/v1/alerts/{alert.id}/ack")
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
    await api.post(f"/api/v1/alerts/{first.id}/ack")
    unacked = (await api.get("/api/v1/alerts", params={"state": "unacknowledged"})).json()
    assert [a["rule"] for a in unacked] == ["hr_high"]
    assert len((await api.get("/api/v1/alerts", params={"state": "open"})).json()) == 2
    assert len((await api.get("/api/v1/alerts", params={"severity": "urgent"})).json()) == 2
    assert (await api.get("/api/v1/alerts", params={"severity": "info"})).json() == []


async def test_resolve_with_a_reason_and_conflicts(api: httpx.AsyncClient, alert_store: Store) -> None:
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    bad = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"reason": "bored"})
    assert bad.status_code == 422
    done = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"reason": "false_alarm"})
    assert done.status_code == 200
    assert (done.json()["state"], done.json()["resolution"], done.json()["resolved_by"]) == (
        "resolved", "false_alarm", "dr.house")
    again = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"reason": "actioned"})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"alert {alert.id}: the alert is already resolved"
    [pending] = alert_store.apply_alert_changes([_change("pending", rule="bp_high")], at=NOW)
    refused = await api.post(f"/api/v1/alerts/{pending.id}/ack")
    assert refused.status_code == 409 and "pending" in refused.json()["error"]["message"]


@pytest.mark.parametrize("alert_id, status", [(2**63, 422), (2**63 - 1, 404), (2**40, 404), (0, 422), (-1, 422),
                                              (99, 404)])
async def test_out_of_range_ids_are_404_or_422_never_500(api: httpx.AsyncClient, alert_id: int, status: int) -> None:
    assert (await api.get(f"/api/v1/alerts/{alert_id}")).status_code == status
    assert (await api.post(f"/api/v1/alerts/{alert_id}/ack")).status_code == status
    resolve = await api.post(f"/api/v1/alerts/{alert_id}/resolve", json={"reason": "actioned"})
    assert resolve.status_code == status
    delete = await api.request("DELETE", f"/api/v1/silences/{alert_id}")
    assert delete.status_code == status
    log = await api.get("/api/v1/notifications", params={"alert_id": alert_id})
    assert log.status_code == (422 if status == 422 else 200)


async def test_silences_are_created_listed_and_deleted(api: httpx.AsyncClient, alert_store: Store) -> None:
    created = await api.post("/api/v1/silences", json={"patient": "pt-1", "metric": "spo2", "duration_min": 120,
                                                       "reason": "in hospital"})
    assert created.status_code == 201
    silence = created.json()
    assert (silence["starts_at"], silence["ends_at"], silence["created_by"]) == (
        "2024-05-01T12:00:00Z", "2024-05-01T14:00:00Z", "dr.house")
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    assert {i.status for i in alert_store.notification_items(alert.id)} == {"suppressed"}
    assert [s["id"] for s in (await api.get("/api/v1/silences", params={"active": True})).json()] == [silence["id"]]
    deleted = await api.request("DELETE", f"/api/v1/silences/{silence['id']}", headers=_as(api.app, "dr.who"))
    assert deleted.status_code == 200 and deleted.json()["deleted_by"] == "dr.who"
    assert (await api.get("/api/v1/silences", params={"active": True})).json() == []
    assert len((await api.get("/api/v1/silences")).json()) == 1


@pytest.mark.parametrize("body", [
    {"patient": "pt-1", "reason": "r"},  # no end
    {"patient": "pt-1", "reason": "r", "duration_min": 5, "ends_at": "2024-05-02T00:00:00Z"},
    {"patient": "pt-1", "reason": "r", "ends_at": "2024-05-02T00:00:00"},  # no zone
    {"patient": "pt-1", "reason": "r", "ends_at": "2024-04-01T00:00:00Z"},  # before it starts
    {"patient": "no spaces", "reason": "r", "duration_min": 5},
    {"patient": "pt-1", "reason": "", "duration_min": 5},
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
    app = _app(alert_store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{server.config.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=_as(app, "dr.house")) as client:
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


async def test_the_stream_sends_only_events_of_the_callers_patients(alert_store: Store) -> None:
    app = _app(alert_store)
    async with StreamCall(app, "/api/v1/alerts/stream", _as(app, "dr.other")) as call:
        assert call.status == 200 and call.headers["content-type"].startswith("text/event-stream")
        assert await call.chunk() == b"retry: 2000\n\n"
        # pt-1's alert is recorded first: dr.other (pt-2's care team) must get only pt-2's.
        await asyncio.to_thread(alert_store.apply_alert_changes, [_change(patient="pt-1")], NOW)
        await asyncio.to_thread(alert_store.apply_alert_changes, [_change(patient="pt-2")], NOW)
        event = (await call.chunk()).decode()
    assert '"patient":"pt-2"' in event and "pt-1" not in event
    async with StreamCall(app, "/api/v1/alerts/stream", {}) as anonymous:
        pass
    assert anonymous.response().status_code == 401


async def test_each_list_holds_only_the_callers_patients(api: httpx.AsyncClient, alert_store: Store) -> None:
    alert_store.apply_alert_changes([_change(patient="pt-1"), _change(patient="pt-2")], at=NOW)
    alert_store.claim_deliveries(NOW + dt.timedelta(minutes=1), lease=dt.timedelta(minutes=1),
                                 group_window=dt.timedelta(seconds=10), limit=10)  # a delivery for each patient
    for patient in ("pt-1", "pt-2"):
        alert_store.add_silence(patient, rule=None, metric=None, starts_at=NOW, ends_at=NOW + dt.timedelta(hours=1),
                                reason="away", by="admin", at=NOW)
    other = _as(api.app, "dr.other")
    assert {a["patient"] for a in (await api.get("/api/v1/alerts", headers=other)).json()} == {"pt-2"}
    assert {d["patient"] for d in (await api.get("/api/v1/notifications", headers=other)).json()} == {"pt-2"}
    assert {s["patient"] for s in (await api.get("/api/v1/silences", headers=other)).json()} == {"pt-2"}
    assert {a["patient"] for a in (await api.get("/api/v1/alerts")).json()} == {"pt-1"}
    assert (await api.get("/api/v1/alerts", params={"patient": "pt-2"})).status_code == 404
    assert (await api.get("/api/v1/notifications", params={"patient": "pt-2"})).status_code == 404
    pt2_alert = next(a for a in alert_store.alerts() if a.patient == "pt-2")
    assert (await api.get(f"/api/v1/alerts/{pt2_alert.id}")).status_code == 404  # like an alert that is not there


async def test_family_reads_but_may_not_ack_resolve_or_silence(api: httpx.AsyncClient, alert_store: Store) -> None:
    [alert] = alert_store.apply_alert_changes([_change()], at=NOW)
    family = _as(api.app, "family.one")
    assert (await api.get(f"/api/v1/alerts/{alert.id}", headers=family)).status_code == 200
    assert [a["id"] for a in (await api.get("/api/v1/alerts", headers=family)).json()] == [alert.id]
    assert (await api.post(f"/api/v1/alerts/{alert.id}/ack", headers=family)).status_code == 403
    resolve = await api.post(f"/api/v1/alerts/{alert.id}/resolve", json={"reason": "actioned"}, headers=family)
    assert resolve.status_code == 403
    silence = await api.post("/api/v1/silences", json={"patient": "pt-1", "duration_min": 5, "reason": "r"},
                             headers=family)
    assert silence.status_code == 403
    assert (await api.get("/api/v1/silences", headers=family)).status_code == 403
    assert alert_store.alert(alert.id).state == "firing"  # type: ignore[union-attr]


async def test_the_acting_user_is_the_signed_in_one_whatever_the_body_says(api: httpx.AsyncClient,
                                                                           alert_store: Store) -> None:
    [first, second] = alert_store.apply_alert_changes([_change(), _change(rule="hr_high")], at=NOW)
    acked = await api.post(f"/api/v1/alerts/{first.id}/ack", json={"by": "somebody.else"})
    assert acked.json()["acknowledged_by"] == "dr.house"
    resolved = await api.post(f"/api/v1/alerts/{second.id}/resolve", json={"by": "somebody.else",
                                                                          "reason": "actioned"})
    assert resolved.json()["resolved_by"] == "dr.house"
    silence = await api.post("/api/v1/silences", json={"patient": "pt-1", "duration_min": 5, "reason": "r",
                                                       "by": "somebody.else"})
    assert silence.json()["created_by"] == "dr.house"
    assert (await api.get("/api/v1/alerts")).status_code == 200
    signed_out = await api.get("/api/v1/alerts", headers={"Authorization": ""})
    assert signed_out.status_code == 401


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
