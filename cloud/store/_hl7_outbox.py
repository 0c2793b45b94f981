"""The HL7 outbox, both sides: rows added in the ingest's transaction, then leased, sent in order and marked.

Order matters to a receiver that files observations as they come, so a sender takes the oldest
due rows as one run and stops at the first that is not due: a message waiting to be retried holds
back the ones after it instead of being overtaken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.store._hl7_models import Hl7OutboxRecord

__all__ = ["Hl7Outbound", "Hl7OutboxStore", "PendingHl7", "add_hl7_messages"]


@dataclass(frozen=True, slots=True)
class Hl7Outbound:
    """A message to queue: its MSH-10, kind (``oru_r01``, ...), patient and ER7 text."""

    control_id: str
    kind: str
    patient: str
    body: str


@dataclass(frozen=True, slots=True)
class PendingHl7:
    """A leased outbox row: what to send, and how many attempts (this one included) it has had."""

    id: int
    control_id: str
    kind: str
    body: str
    attempt: int


def add_hl7_messages(session: Session, messages: Iterable[Hl7Outbound], at: dt.datetime) -> int:
    """Queue ``messages`` in the caller's transaction, skipping control ids already queued; returns how many."""
    wanted = {message.control_id: message for message in messages}
    if not wanted:
        return 0
    known = set(session.scalars(select(Hl7OutboxRecord.control_id)
                                .where(Hl7OutboxRecord.control_id.in_(sorted(wanted)))))
    fresh = [message for control_id, message in wanted.items() if control_id not in known]
    session.add_all(Hl7OutboxRecord(control_id=m.control_id, kind=m.kind, patient=m.patient[:64], body=m.body,
                                    created_at=at, status="pending", attempts=0, last_error="", next_attempt_at=at)
                    for m in fresh)
    return len(fresh)


class Hl7OutboxStore:
    """The sender's view of the outbox over one SQLAlchemy engine (every method blocks: run it in a thread)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def enqueue(self, messages: Iterable[Hl7Outbound], at: dt.datetime) -> int:
        """Queue ``messages`` in a transaction of their own (for senders other than the ingest)."""
        with self._sessions() as session, session.begin():
            return add_hl7_messages(session, messages, at)

    def claim(self, at: dt.datetime, lease: dt.timedelta, limit: int) -> list[PendingHl7]:
        """Lease the oldest pending rows, in order, up to the first one that is not due yet."""
        with self._sessions() as session, session.begin():
            rows = session.execute(
                select(Hl7OutboxRecord.id, Hl7OutboxRecord.next_attempt_at, Hl7OutboxRecord.lease_until)
                .where(Hl7OutboxRecord.status == "pending").order_by(Hl7OutboxRecord.id).limit(limit)
            ).all()
            due: list[int] = []
            for row_id, next_at, lease_until in rows:
                if next_at > at or (lease_until is not None and lease_until > at):
                    break  # in order: nothing overtakes a message that waits
                due.append(row_id)
            claimed: list[int] = []
            for row_id in due:
                taken = session.execute(
                    update(Hl7OutboxRecord)
                    .where(Hl7OutboxRecord.id == row_id, Hl7OutboxRecord.status == "pending",
                           Hl7OutboxRecord.lease_until.is_(None) | (Hl7OutboxRecord.lease_until <= at))
                    .values(lease_until=at + lease, attempts=Hl7OutboxRecord.attempts + 1)
                )
                if getattr(taken, "rowcount", 0) != 1:
                    break  # another sender got there first: leave the rest to it
                claimed.append(row_id)
            if not claimed:
                return []
            records = session.scalars(select(Hl7OutboxRecord).where(Hl7OutboxRecord.id.in_(claimed))
                                      .order_by(Hl7OutboxRecord.id))
            return [PendingHl7(r.id, r.control_id, r.kind, r.body, r.attempts) for r in records]

    def mark_sent(self, row_id: int, at: dt.datetime) -> None:
        """The receiver acknowledged the row's message."""
        with self._sessions() as session, session.begin():
            session.execute(update(Hl7OutboxRecord).where(Hl7OutboxRecord.id == row_id)
                            .values(status="sent", sent_at=at, lease_until=None, last_error=""))

    def mark_failed(self, row_id: int, error: str, retry_at: dt.datetime | None) -> None:
        """A failed attempt: retry at ``retry_at``, or (None) give the message up as failed."""
        values: dict[str, object] = {"last_error": error[:2000], "lease_until": None}
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        with self._sessions() as session, session.begin():
            session.execute(update(Hl7OutboxRecord)
                            .where(Hl7OutboxRecord.id == row_id, Hl7OutboxRecord.status == "pending").values(**values))

    def release(self, row_ids: Iterable[int]) -> None:
        """Give leased rows back untouched (a pass that stopped before sending them)."""
        ids = list(row_ids)
        if not ids:
            return
        with self._sessions() as session, session.begin():
            session.execute(update(Hl7OutboxRecord).where(Hl7OutboxRecord.id.in_(ids))
                            .values(lease_until=None, attempts=Hl7OutboxRecord.attempts - 1))

    def prune(self, sent_before: dt.datetime, failed_before: dt.datetime) -> int:
        """Delete rows sent before ``sent_before`` and failed rows created before ``failed_before``."""
        with self._sessions() as session, session.begin():
            removed = session.execute(delete(Hl7OutboxRecord).where(
                ((Hl7OutboxRecord.status == "sent") & (Hl7OutboxRecord.sent_at < sent_before))
                | ((Hl7OutboxRecord.status == "failed") & (Hl7OutboxRecord.created_at < failed_before))))
            return int(getattr(removed, "rowcount", 0) or 0)

    def counts(self) -> dict[str, int]:
        """Rows by status (``pending``, ``sent``, ``failed``)."""
        counts = {"pending": 0, "sent": 0, "failed": 0}
        with self._sessions() as session:
            for status, count in session.execute(select(Hl7OutboxRecord.status, func.count())
                                                 .group_by(Hl7OutboxRecord.status)):
                counts[status] = int(count)
        return counts

    def rows(self, status: str | None = None) -> list[Hl7OutboxRecord]:
        """Outbox rows in order (of one status when asked)."""
        statement = select(Hl7OutboxRecord).order_by(Hl7OutboxRecord.id)
        if status is not None:
            statement = statement.where(Hl7OutboxRecord.status == status)
        with self._sessions() as session:
            return list(session.scalars(statement))
