"""The alerts API: list and read alerts, acknowledge, resolve, silences, the notification log, a live stream.

Who acts comes from :func:`acting_user` alone, so an authenticated identity can take the place of
the name in the request body in one spot.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from cloud.alerting import LifecycleError
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

__all__ = ["AckRequest", "AlertOut", "acting_user", "alerts_router"]

_ID = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row id")]
_STATE_PATTERN = "^(" + "|".join(STATE_FILTERS) + ")$"


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


class AckRequest(BaseModel):
    """Who acknowledges an alert."""

    by: str = Field(min_length=1, max_length=128)


class ResolveRequest(AckRequest):
    """Who ends an alert and why."""

    reason: Literal["actioned", "false_alarm", "device_problem"]


class SilenceRequest(AckRequest):
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


def acting_user(body: AckRequest) -> str:
    """Who is acting: today the name in the request body (the one place to swap for the authenticated user)."""
    return body.by


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
        escalation_step=record.escalation_step, late=record.late,
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

    @router.get("/alerts", response_model=list[AlertOut])
    async def list_alerts(
        patient: str | None = None,
        state: Annotated[str | None, Query(pattern=_STATE_PATTERN,
                                           description="a lifecycle state, open (not ended) or unacknowledged")] = None,
        severity: Annotated[str | None, Query(max_length=16)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertOut]:
        """Alerts, newest first, optionally for one patient, state or severity."""
        query = AlertQuery(patient=patient, state=state, severity=severity, limit=limit)
        return [alert_out(record) for record in await asyncio.to_thread(store.alerts, query)]

    @router.get("/alerts/stream", response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}}}})
    async def alert_stream(
        request: Request,
        after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="resume after this event id")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: every alert transition as it is recorded (``event: transition``).

        A client that reconnects with ``Last-Event-ID`` (or ``?after=``) misses nothing; without
        either, the stream starts with what happens next.
        """
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

    @router.get("/alerts/{alert_id}", response_model=AlertDetail)
    async def get_alert(alert_id: _ID) -> AlertDetail:
        """One alert with every transition (oldest first) and every notification."""
        record = await asyncio.to_thread(store.alert, alert_id)
        if record is None:
            raise HTTPException(404, f"no alert with id {alert_id}")
        transitions = await asyncio.to_thread(store.transitions, alert_id)
        items = await asyncio.to_thread(store.notification_items, alert_id)
        return AlertDetail(**alert_out(record).model_dump(), transitions=[_transition_out(t) for t in transitions],
                           notifications=[_item_out(item) for item in items])

    @router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
    async def acknowledge_alert(alert_id: _ID, request: AckRequest) -> AlertOut:
        """Record that a clinician has seen the alert; stops every reminder and escalation on every channel."""
        try:
            record = await asyncio.to_thread(store.acknowledge, alert_id, acting_user(request), clock())
        except LifecycleError as exc:
            raise HTTPException(409, f"alert {alert_id}: {exc}") from None
        if record is None:
            raise HTTPException(404, f"no alert with id {alert_id}")
        return alert_out(record)

    @router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
    async def resolve_alert(alert_id: _ID, request: ResolveRequest) -> AlertOut:
        """End the alert: actioned, false_alarm or device_problem."""
        try:
            record = await asyncio.to_thread(store.resolve, alert_id, acting_user(request), request.reason, clock())
        except LifecycleError as exc:
            raise HTTPException(409, f"alert {alert_id}: {exc}") from None
        if record is None:
            raise HTTPException(404, f"no alert with id {alert_id}")
        return alert_out(record)

    @router.get("/notifications", response_model=list[DeliveryOut])
    async def notification_log(
        patient: str | None = None,
        status: Annotated[str | None, Query(pattern="^(pending|sent|failed|cancelled)$")] = None,
        alert_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[DeliveryOut]:
        """Messages to recipients, newest first: status, attempts, the last error, the alerts each told."""
        query = NotificationQuery(patient=patient, status=status, alert_id=alert_id, limit=limit)
        return [_delivery_out(log) for log in await asyncio.to_thread(store.deliveries, query)]

    @router.post("/silences", response_model=SilenceOut, status_code=201)
    async def create_silence(request: SilenceRequest) -> SilenceOut:
        """Hold back a patient's notifications (alerts are still recorded) until the silence ends."""
        if not is_identifier(request.patient):
            raise HTTPException(422, f"patient id {request.patient[:80]!r} is not a valid identifier")
        now = clock()
        starts = request.starts_at or now
        ends = request.ends_at or starts + dt.timedelta(minutes=request.duration_min or 0)
        if ends <= starts:
            raise HTTPException(422, "a silence must end after it starts")
        record = await asyncio.to_thread(
            lambda: store.add_silence(request.patient, rule=request.rule, metric=request.metric, starts_at=starts,
                                      ends_at=ends, reason=request.reason, by=acting_user(request), at=now))
        return _silence_out(record)

    @router.get("/silences", response_model=list[SilenceOut])
    async def list_silences(patient: str | None = None, active: bool = False,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[SilenceOut]:
        """Silences, newest first; ``active=true`` keeps only those in force now."""
        rows = await asyncio.to_thread(lambda: store.silences(patient=patient, active_at=clock() if active else None,
                                                              limit=limit))
        return [_silence_out(row) for row in rows]

    @router.delete("/silences/{silence_id}", response_model=SilenceOut)
    async def delete_silence(silence_id: _ID, request: AckRequest) -> SilenceOut:
        """End a silence now; it stays listed with who ended it."""
        record = await asyncio.to_thread(store.delete_silence, silence_id, acting_user(request), clock())
        if record is None:
            raise HTTPException(404, f"no silence with id {silence_id}")
        return _silence_out(record)

    return router
