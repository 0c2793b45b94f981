"""The alerts API: list and read alerts, acknowledge, resolve, silences, the notification log, a live stream.

Every route is under the policy (:mod:`cloud.auth.policy`): reading needs a relation to the patient (care
team or family) and every list, and the stream, hold only the caller's patients; acknowledging, resolving
and silencing need the care team. Who acts is the signed-in user (:func:`acting_user`), never a name in
the request body.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from cloud.alerting import LifecycleError
from cloud.auth import ERROR_RESPONSES, ApiError, ErrorBody
from cloud.auth.policy import Permission, Principal, check_patient, note_patients, require
from cloud.store import (
    STATE_FILTERS,
    AlertQuery,
    AlertRecord,
    AlertTransition,
    DeliveryLog,
    NotificationItem,
    NotificationQuery,
    SilenceRecord,
    Store,
)
from vitals.samples import is_identifier

__all__ = ["AlertOut", "ResolveRequest", "SilenceRequest", "acting_user", "alerts_router"]

_ID = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row id")]
_STATE_PATTERN = "^(" + "|".join(STATE_FILTERS) + ")$"
_CONFLICT: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "The alert's state does not allow this"}}


class AlertOut(BaseModel):
    """An alert as the dashboard shows it (``episode_start`` is the current episode's)."""

    id: int
    rule: str
    kind: str
    patient: str
    metric: str
    severity: str
    state: str
    message: str
    threshold: float
    worst_value: float
    episode_start: dt.datetime
    episodes: int = Field(description="episodes under this alert; more than 1 means it came back")
    fired: dt.datetime
    last: dt.datetime
    resolved: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    escalation_step: int = 0
    late: bool = Field(description="found in data a gateway sent after an outage, not as it happened")
    rule_version: str | None = Field(None, description="hash of the rule configuration that raised it")
    settings_version: str | None = Field(None, description="version of the patient's settings it was judged with")


class TransitionOut(BaseModel):
    """One step of an alert's life."""

    id: int
    alert_id: int
    patient: str
    rule: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str
    at: dt.datetime


class NotificationOut(BaseModel):
    """One outbox item of an alert, with its delivery's fate when it was grouped into one."""

    id: int
    role: str
    channel: str
    address: str
    purpose: str
    step: int
    created_at: dt.datetime
    status: str
    reason: str
    delivery_id: int | None


class AlertDetail(AlertOut):
    """An alert with every transition and notification."""

    transitions: list[TransitionOut]
    notifications: list[NotificationOut]


class DeliveryOut(BaseModel):
    """A message sent (or being sent) to one recipient: the notification log."""

    id: int
    key: str
    patient: str
    channel: str
    address: str
    status: str
    attempts: int
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    alert_ids: list[int]


class SilenceOut(BaseModel):
    """A silence and who set it."""

    id: int
    patient: str
    rule: str | None
    metric: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str
    created_by: str
    created_at: dt.datetime
    deleted_at: dt.datetime | None
    deleted_by: str | None


class ResolveRequest(BaseModel):
    """Why an alert ends (who ends it is the signed-in user)."""

    reason: Literal["actioned", "false_alarm", "device_problem"]


class SilenceRequest(BaseModel):
    """Silence a patient's alerts (or one rule's or metric's) until ``ends_at`` or for ``duration_min``."""

    patient: str = Field(min_length=1, max_length=64)
    rule: str | None = Field(None, min_length=1, max_length=64)
    metric: str | None = Field(None, min_length=1, max_length=64)
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    duration_min: float | None = Field(None, gt=0, le=366 * 24 * 60)
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceRequest:
        if (self.ends_at is None) == (self.duration_min is None):
            raise ValueError("give exactly one of ends_at and duration_min")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2024-05-01T12:00:00Z)")
        return self


def acting_user(principal: Principal) -> str:
    """Who is acting: the signed-in user (the name recorded on transitions and silences)."""
    return principal.username


def _from_ns(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1e9, dt.UTC)


def alert_out(record: AlertRecord) -> AlertOut:
    """The API view of an alert row."""
    return AlertOut(
        id=record.id, rule=record.rule, kind=record.kind, patient=record.patient, metric=record.metric,
        severity=record.severity, state=record.state, message=record.message, threshold=record.threshold,
        worst_value=record.worst_value, episode_start=_from_ns(record.episode_ns or record.episode_start_ns),
        episodes=record.episodes, fired=_from_ns(record.fired_ns), last=_from_ns(record.last_ns),
        resolved=_from_ns(record.resolved_ns) if record.resolved_ns is not None else None,
        acknowledged_at=record.acknowledged_at, acknowledged_by=record.acknowledged_by,
        resolved_at=record.resolved_at, resolved_by=record.resolved_by, resolution=record.resolution,
        escalation_step=record.escalation_step, late=record.late, rule_version=record.rule_version,
        settings_version=record.settings_version,
    )


def _transition_out(row: AlertTransition) -> TransitionOut:
    return TransitionOut(id=row.id, alert_id=row.alert_id, patient=row.patient, rule=row.rule,
                         from_state=row.from_state, to_state=row.to_state, actor=row.actor, reason=row.reason,
                         at=row.at)


def _item_out(row: NotificationItem) -> NotificationOut:
    return NotificationOut(id=row.id, role=row.role, channel=row.channel, address=row.address, purpose=row.purpose,
                           step=row.step, created_at=row.created_at, status=row.status, reason=row.reason,
                           delivery_id=row.delivery_id)


def _delivery_out(log: DeliveryLog) -> DeliveryOut:
    d = log.delivery
    return DeliveryOut(id=d.id, key=d.key, patient=d.patient, channel=d.channel, address=d.address, status=d.status,
                       attempts=d.attempts, last_error=d.last_error, created_at=d.created_at,
                       next_attempt_at=d.next_attempt_at, sent_at=d.sent_at, alert_ids=log.alert_ids)


def _silence_out(row: SilenceRecord) -> SilenceOut:
    return SilenceOut(id=row.id, patient=row.patient, rule=row.rule, metric=row.metric, starts_at=row.starts_at,
                      ends_at=row.ends_at, reason=row.reason, created_by=row.created_by, created_at=row.created_at,
                      deleted_at=row.deleted_at, deleted_by=row.deleted_by)


def _sse(row: AlertTransition) -> bytes:
    data = json.dumps(_transition_out(row).model_dump(mode="json"), separators=(",", ":"))
    return f"id: {row.id}\nevent: transition\ndata: {data}\n\n".encode()


def alerts_router(store: Store, clock: Callable[[], dt.datetime], *, stream_poll_s: float = 0.5,
                  heartbeat_s: float = 15.0) -> APIRouter:
    """Routes under ``/api/v1``: alerts, their stream, silences and the notification log."""
    router = APIRouter(prefix="/api/v1")

    @router.get("/alerts", response_model=list[AlertOut], responses=ERROR_RESPONSES)
    async def list_alerts(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_ALERTS))],
        patient: Annotated[str | None, Query(max_length=64)] = None,
        state: Annotated[str | None, Query(pattern=_STATE_PATTERN,
                                           description="a lifecycle state, open (not ended) or unacknowledged")] = None,
        severity: Annotated[str | None, Query(max_length=16)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertOut]:
        """The caller's patients' alerts, newest first, optionally for one patient, state or severity."""
        if patient is not None:
            check_patient(request, principal, Permission.READ_ALERTS, patient)
        query = AlertQuery(patient=patient, state=state, severity=severity, limit=limit,
                           patients=principal.patients(Permission.READ_ALERTS))
        records = await asyncio.to_thread(store.alerts, query)
        note_patients(request, sorted({record.patient for record in records}))
        return [alert_out(record) for record in records]

    @router.get("/alerts/stream", response_class=StreamingResponse,
                responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}})
    async def alert_stream(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_ALERTS))],
        after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="resume after this event id")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: every transition of the caller's patients' alerts as it is recorded
        (``event: transition``); the patients are those the caller may read when the stream starts.

        A client that reconnects with ``Last-Event-ID`` (or ``?after=``) misses nothing; without
        either, the stream starts with what happens next.
        """
        visible = principal.patients(Permission.READ_ALERTS)
        note_patients(request, sorted(visible))
        start = after
        if start is None and last_event_id is not None:
            start = int(last_event_id) if last_event_id.isdigit() else None
        if start is None:
            start = await asyncio.to_thread(store.last_transition_id)

        async def events() -> AsyncIterator[bytes]:
            last = start
            quiet = 0.0
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                rows = await asyncio.to_thread(store.transitions_after, last)
                for row in rows:
                    last = row.id
                    if row.patient in visible:
                        yield _sse(row)
                if rows:
                    quiet = 0.0
                    continue
                quiet += stream_poll_s
                if quiet >= heartbeat_s:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                await asyncio.sleep(stream_poll_s)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=ERROR_RESPONSES)
    async def get_alert(
        request: Request,
        alert_id: _ID,
        principal: Annotated[Principal, Depends(require(Permission.READ_ALERTS))],
    ) -> AlertDetail:
        """One alert of the caller's patients with every transition (oldest first) and every notification."""
        record = await asyncio.to_thread(store.alert, alert_id)
        check_patient(request, principal, Permission.READ_ALERTS, record.patient if record is not None else None)
        assert record is not None
        transitions = await asyncio.to_thread(store.transitions, alert_id)
        items = await asyncio.to_thread(store.notification_items, alert_id)
        return AlertDetail(**alert_out(record).model_dump(), transitions=[_transition_out(t) for t in transitions],
                           notifications=[_item_out(item) for item in items])

    async def _alert_for(request: Request, principal: Principal, permission: Permission,
                         alert_id: int) -> None:
        record = await asyncio.to_thread(store.alert, alert_id)
        check_patient(request, principal, permission, record.patient if record is not None else None)

    @router.post("/alerts/{alert_id}/ack", response_model=AlertOut, responses=_CONFLICT)
    async def acknowledge_alert(
        request: Request,
        alert_id: _ID,
        principal: Annotated[Principal, Depends(require(Permission.ACK_ALERT))],
    ) -> AlertOut:
        """Record that a clinician of the patient's care team (the caller) has seen the alert; stops every
        reminder and escalation on every channel."""
        await _alert_for(request, principal, Permission.ACK_ALERT, alert_id)
        try:
            record = await asyncio.to_thread(store.acknowledge, alert_id, acting_user(principal), clock())
        except LifecycleError as exc:
            raise ApiError(409, f"alert {alert_id}: {exc}") from None
        if record is None:
            raise ApiError(404, "not found")
        return alert_out(record)

    @router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses=_CONFLICT)
    async def resolve_alert(
        request: Request,
        alert_id: _ID,
        body: ResolveRequest,
        principal: Annotated[Principal, Depends(require(Permission.RESOLVE_ALERT))],
    ) -> AlertOut:
        """End the alert (the caller, of the patient's care team): actioned, false_alarm or device_problem."""
        await _alert_for(request, principal, Permission.RESOLVE_ALERT, alert_id)
        try:
            record = await asyncio.to_thread(store.resolve, alert_id, acting_user(principal), body.reason, clock())
        except LifecycleError as exc:
            raise ApiError(409, f"alert {alert_id}: {exc}") from None
        if record is None:
            raise ApiError(404, "not found")
        return alert_out(record)

    @router.get("/notifications", response_model=list[DeliveryOut], responses=ERROR_RESPONSES)
    async def notification_log(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_ALERTS))],
        patient: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(pattern="^(pending|sent|failed|cancelled)$")] = None,
        alert_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[DeliveryOut]:
        """Messages to the caller's patients' recipients, newest first: status, attempts, the last error, the
        alerts each told."""
        if patient is not None:
            check_patient(request, principal, Permission.READ_ALERTS, patient)
        query = NotificationQuery(patient=patient, status=status, alert_id=alert_id, limit=limit,
                                  patients=principal.patients(Permission.READ_ALERTS))
        logs = await asyncio.to_thread(store.deliveries, query)
        note_patients(request, sorted({log.delivery.patient for log in logs}))
        return [_delivery_out(log) for log in logs]

    @router.post("/silences", response_model=SilenceOut, status_code=201, responses=ERROR_RESPONSES)
    async def create_silence(
        request: Request,
        body: SilenceRequest,
        principal: Annotated[Principal, Depends(require(Permission.SILENCE_ALERTS))],
    ) -> SilenceOut:
        """Hold back a patient's notifications (alerts are still recorded) until the silence ends; the
        caller must be on the patient's care team."""
        if not is_identifier(body.patient):
            raise ApiError(422, f"patient id {body.patient[:80]!r} is not a valid identifier")
        check_patient(request, principal, Permission.SILENCE_ALERTS, body.patient)
        now = clock()
        starts = body.starts_at or now
        ends = body.ends_at or starts + dt.timedelta(minutes=body.duration_min or 0)
        if ends <= starts:
            raise ApiError(422, "a silence must end after it starts")
        record = await asyncio.to_thread(
            lambda: store.add_silence(body.patient, rule=body.rule, metric=body.metric, starts_at=starts,
                                      ends_at=ends, reason=body.reason, by=acting_user(principal), at=now))
        return _silence_out(record)

    @router.get("/silences", response_model=list[SilenceOut], responses=ERROR_RESPONSES)
    async def list_silences(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.SILENCE_ALERTS))],
        patient: Annotated[str | None, Query(max_length=64)] = None,
        active: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[SilenceOut]:
        """Silences of the caller's care-team patients, newest first; ``active=true`` keeps only those in
        force now."""
        if patient is not None:
            check_patient(request, principal, Permission.SILENCE_ALERTS, patient)
        visible = principal.patients(Permission.SILENCE_ALERTS)
        if not visible:
            raise ApiError(403, f"a {principal.role.value} on no care team may not {Permission.SILENCE_ALERTS.value}")
        rows = await asyncio.to_thread(lambda: store.silences(patient=patient, active_at=clock() if active else None,
                                                              limit=limit, patients=visible))
        note_patients(request, sorted({row.patient for row in rows}))
        return [_silence_out(row) for row in rows]

    @router.delete("/silences/{silence_id}", response_model=SilenceOut, responses=ERROR_RESPONSES)
    async def delete_silence(
        request: Request,
        silence_id: _ID,
        principal: Annotated[Principal, Depends(require(Permission.SILENCE_ALERTS))],
    ) -> SilenceOut:
        """End a silence now (the caller, of the patient's care team); it stays listed with who ended it."""
        found = await asyncio.to_thread(store.silence, silence_id)
        check_patient(request, principal, Permission.SILENCE_ALERTS, found.patient if found is not None else None)
        record = await asyncio.to_thread(store.delete_silence, silence_id, acting_user(principal), clock())
        if record is None:
            raise ApiError(404, "not found")
        return _silence_out(record)

    return router
