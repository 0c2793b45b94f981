"""The store's alert methods: queries, clinicians' actions, silences, the clock, the outbox and the live feed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cloud.alerting._context import AlertingContext
from cloud.alerting._lifecycle import Resolution
from cloud.alerting._messages import OutgoingMessage
from cloud.rules import AlertChange
from cloud.store import _outbox
from cloud.store._alerting_models import AlertTransition, NotificationDelivery, NotificationItem, SilenceRecord
from cloud.store._alerts import acknowledge_alert, apply_alert_changes, resolve_alert, tick_alerts
from cloud.store._models import AlertRecord

__all__ = ["MAX_ID", "STATE_FILTERS", "AlertQuery", "AlertingStore", "DeliveryLog", "NotificationQuery"]

MAX_ID = 2**31 - 1
"""The largest row id any supported database holds (PostgreSQL's INTEGER); larger ids name nothing."""

ALERT_STATES = ("pending", "firing", "acknowledged", "resolved", "closed")
STATE_FILTERS: dict[str, tuple[str, ...]] = {
    **{state: (state,) for state in ALERT_STATES},
    "open": ("pending", "firing", "acknowledged"),
    "unacknowledged": ("firing",),
}
"""What ``GET /api/v1/alerts?state=`` accepts: a lifecycle state, ``open`` (not yet ended) or ``unacknowledged``."""


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters for :meth:`AlertingStore.alerts` (``state``: a key of ``STATE_FILTERS``)."""

    patient: str | None = None
    state: str | None = None
    severity: str | None = None
    limit: int = 100
    patients: frozenset[str] | None = None  # only these patients' alerts (the caller's visible ones)


@dataclass(frozen=True, slots=True)
class NotificationQuery:
    """Filters for :meth:`AlertingStore.deliveries`."""

    patient: str | None = None
    status: str | None = None
    alert_id: int | None = None
    limit: int = 100
    patients: frozenset[str] | None = None  # only these patients' messages (the caller's visible ones)


@dataclass
class DeliveryLog:
    """One delivery and the alerts (ids) it told."""

    delivery: NotificationDelivery
    alert_ids: list[int] = field(default_factory=list)


_T = TypeVar("_T")
_ATTEMPTS = 5


def _valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


def _retrying(write: Callable[[], _T]) -> _T:
    """Run a read-then-write transaction again when another writer changed the same alert in between."""
    for attempt in range(_ATTEMPTS):
        try:
            return write()
        except StaleDataError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class AlertingStore:
    """Mixed into :class:`cloud.store.Store`: everything about alerts after the rules have spoken."""

    alerting: AlertingContext

    def _session(self) -> Session:  # pragma: no cover - provided by Store
        raise NotImplementedError

    # -- rule changes and the clock ------------------------------------------------------------------
    def apply_alert_changes(self, changes: Sequence[AlertChange], at: dt.datetime | None = None) -> list[AlertRecord]:
        """Apply rule changes in a transaction of their own (at ``at``, default now); returns new alerts."""
        when = at if at is not None else dt.datetime.now(dt.UTC)

        def write() -> list[AlertRecord]:
            with self._session() as session, session.begin():
                return apply_alert_changes(session, changes, when, self.alerting)

        return _retrying(write)

    def tick_alerts(self, at: dt.datetime) -> int:
        """Move every alert on to ``at``: escalation, repeats, acknowledgement timeouts, closing."""
        def write() -> int:
            with self._session() as session, session.begin():
                return tick_alerts(session, at, self.alerting)

        return _retrying(write)

    # -- reading ---------------------------------------------------------------------------------------
    def alerts(self, query: AlertQuery = AlertQuery()) -> list[AlertRecord]:
        """Alerts matching ``query``, newest first."""
        statement = select(AlertRecord).order_by(AlertRecord.fired_ns.desc(), AlertRecord.id.desc()).limit(query.limit)
        if query.patient is not None:
            statement = statement.where(AlertRecord.patient == query.patient)
        if query.state is not None:
            statement = statement.where(AlertRecord.state.in_(STATE_FILTERS[query.state]))
        if query.severity is not None:
            statement = statement.where(AlertRecord.severity == query.severity)
        if query.patients is not None:
            statement = statement.where(AlertRecord.patient.in_(sorted(query.patients)))
        with self._session() as session:
            return list(session.scalars(statement))

    def alert(self, alert_id: int) -> AlertRecord | None:
        """One alert, or None."""
        if not _valid_id(alert_id):
            return None
        with self._session() as session:
            return session.get(AlertRecord, alert_id)

    def transitions(self, alert_id: int) -> list[AlertTransition]:
        """Every transition of one alert, oldest first."""
        with self._session() as session:
            return list(session.scalars(select(AlertTransition).where(AlertTransition.alert_id == alert_id)
                                        .order_by(AlertTransition.id)))

    def transitions_after(self, last_id: int, limit: int = 500) -> list[AlertTransition]:
        """Transitions of every alert with an id above ``last_id``, oldest first (the live feed)."""
        with self._session() as session:
            return list(session.scalars(select(AlertTransition).where(AlertTransition.id > last_id)
                                        .order_by(AlertTransition.id).limit(limit)))

    def last_transition_id(self) -> int:
        """The newest transition's id (0 when there is none)."""
        with self._session() as session:
            return int(session.scalar(select(AlertTransition.id).order_by(AlertTransition.id.desc()).limit(1)) or 0)

    def notification_items(self, alert_id: int) -> list[NotificationItem]:
        """The outbox items of one alert, oldest first."""
        with self._session() as session:
            return list(session.scalars(select(NotificationItem).where(NotificationItem.alert_id == alert_id)
                                        .order_by(NotificationItem.id)))

    def deliveries(self, query: NotificationQuery = NotificationQuery()) -> list[DeliveryLog]:
        """The notification log: deliveries, newest first, with the alerts each told."""
        statement = select(NotificationDelivery).order_by(NotificationDelivery.id.desc()).limit(query.limit)
        if query.patient is not None:
            statement = statement.where(NotificationDelivery.patient == query.patient)
        if query.status is not None:
            statement = statement.where(NotificationDelivery.status == query.status)
        if query.patients is not None:
            statement = statement.where(NotificationDelivery.patient.in_(sorted(query.patients)))
        if query.alert_id is not None:
            statement = statement.where(NotificationDelivery.id.in_(
                select(NotificationItem.delivery_id).where(NotificationItem.alert_id == query.alert_id)))
        with self._session() as session:
            logs = [DeliveryLog(delivery) for delivery in session.scalars(statement)]
            if logs:
                by_id = {log.delivery.id: log for log in logs}
                for delivery_id, alert_id in session.execute(
                        select(NotificationItem.delivery_id, NotificationItem.alert_id)
                        .where(NotificationItem.delivery_id.in_(sorted(by_id))).order_by(NotificationItem.id)):
                    assert delivery_id is not None
                    ids = by_id[delivery_id].alert_ids
                    if alert_id not in ids:
                        ids.append(alert_id)
            return logs

    # -- clinicians ------------------------------------------------------------------------------------
    def acknowledge(self, alert_id: int, by: str, at: dt.datetime) -> AlertRecord | None:
        """``by`` has seen the alert (the first acknowledgement stands); None when there is no such alert.

        Raises ``cloud.alerting.LifecycleError`` when the alert is only pending.
        """
        if not _valid_id(alert_id):
            return None
        def write() -> AlertRecord | None:
            with self._session() as session, session.begin():
                return acknowledge_alert(session, alert_id, by, at, self.alerting)

        return _retrying(write)

    def resolve(self, alert_id: int, by: str, reason: Resolution, at: dt.datetime) -> AlertRecord | None:
        """``by`` ends the alert for ``reason``; None when there is no such alert.

        Raises ``cloud.alerting.LifecycleError`` when the alert has already ended.
        """
        if not _valid_id(alert_id):
            return None
        def write() -> AlertRecord | None:
            with self._session() as session, session.begin():
                return resolve_alert(session, alert_id, by, reason, at, self.alerting)

        return _retrying(write)

    # -- silences --------------------------------------------------------------------------------------
    def add_silence(self, patient: str, *, rule: str | None, metric: str | None, starts_at: dt.datetime,
                    ends_at: dt.datetime, reason: str, by: str, at: dt.datetime) -> SilenceRecord:
        """Silence ``patient``'s alerts (of ``rule`` / ``metric`` when given) from ``starts_at`` to ``ends_at``."""
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        with self._session() as session, session.begin():
            record = SilenceRecord(patient=patient, rule=rule, metric=metric, starts_at=starts_at, ends_at=ends_at,
                                   reason=reason, created_by=by, created_at=at)
            session.add(record)
        return record

    def silences(self, *, patient: str | None = None, active_at: dt.datetime | None = None,
                 limit: int = 100, patients: frozenset[str] | None = None) -> list[SilenceRecord]:
        """Silences, newest first; only those in force at ``active_at`` when given, only of ``patients`` when
        given."""
        statement = select(SilenceRecord).order_by(SilenceRecord.id.desc()).limit(limit)
        if patient is not None:
            statement = statement.where(SilenceRecord.patient == patient)
        if patients is not None:
            statement = statement.where(SilenceRecord.patient.in_(sorted(patients)))
        if active_at is not None:
            statement = statement.where(SilenceRecord.deleted_at.is_(None), SilenceRecord.starts_at <= active_at,
                                        SilenceRecord.ends_at > active_at)
        with self._session() as session:
            return list(session.scalars(statement))

    def silence(self, silence_id: int) -> SilenceRecord | None:
        """One silence (None when there is no such silence)."""
        if not _valid_id(silence_id):
            return None
        with self._session() as session:
            return session.get(SilenceRecord, silence_id)

    def delete_silence(self, silence_id: int, by: str, at: dt.datetime) -> SilenceRecord | None:
        """End a silence now (the row stays as the record); None when there is no such silence."""
        if not _valid_id(silence_id):
            return None
        with self._session() as session, session.begin():
            record = session.get(SilenceRecord, silence_id)
            if record is not None and record.deleted_at is None:
                record.deleted_at, record.deleted_by = at, by
            return record

    # -- the outbox (cloud.alerting.Outbox) ----------------------------------------------------------------
    def claim_deliveries(self, at: dt.datetime, *, lease: dt.timedelta, group_window: dt.timedelta,
                         limit: int) -> list[OutgoingMessage]:
        """Group queued items into messages and lease up to ``limit`` due messages."""
        with self._session() as session, session.begin():
            return _outbox.claim_deliveries(session, at, lease, group_window, limit)

    def mark_sent(self, delivery_id: int, at: dt.datetime) -> None:
        """The message went out."""
        with self._session() as session, session.begin():
            _outbox.mark_sent(session, delivery_id, at)

    def mark_failed(self, delivery_id: int, at: dt.datetime, error: str, retry_at: dt.datetime | None) -> None:
        """The message did not go out; try again at ``retry_at`` (None: give up)."""
        with self._session() as session, session.begin():
            _outbox.mark_failed(session, delivery_id, at, error, retry_at)

    def outbox_counts(self) -> dict[str, int]:
        """Deliveries by status, and items still queued."""
        with self._session() as session:
            return _outbox.outbox_counts(session)

