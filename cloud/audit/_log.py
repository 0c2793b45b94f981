"""The audit log: append-only, hash-chained rows of who did what to which patient's data, from where, with
which outcome; queried by admins, verified end to end, pruned by retention without breaking the chain.

Appends serialise on the single ``audit_head`` row (updated first, so the database's write lock or row
lock is taken before the previous hash is read): several API processes extend one chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.audit._chain import CHAINED_FIELDS, GENESIS, ChainVerdict, row_hash, verify_chain
from cloud.store._registry_models import AuditEventRecord, AuditHead

__all__ = ["AuditEntry", "AuditEvent", "AuditLog", "AuditQuery"]

_PAGE = 2000


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What to record. ``outcome`` is ``allowed``, ``denied`` (401/403/404/429) or ``failed``."""

    at: dt.datetime
    action: str
    target: str
    client: str
    status: int
    outcome: str
    actor: str | None = None
    role: str | None = None
    patient: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A stored row, as the admin API shows it."""

    id: int
    at: dt.datetime
    actor: str | None
    role: str | None
    patient: str | None
    action: str
    target: str
    client: str
    status: int
    outcome: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for :meth:`AuditLog.entries` (all optional); newest first, ``before_id`` pages back."""

    actor: str | None = None
    patient: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_id: int | None = None
    limit: int = 100


class AuditLog:
    """The audit trail over one SQLAlchemy engine (the store's)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def append(self, events: Sequence[AuditEvent]) -> list[int]:
        """Record ``events`` in order, in one transaction; returns their ids."""
        if not events:
            return []
        with self._sessions() as session, session.begin():
            # Take the lock first: bump last_id by the number of rows, then read the head.
            session.execute(update(AuditHead).where(AuditHead.id == 1)
                            .values(last_id=AuditHead.last_id + len(events)))
            head = session.get(AuditHead, 1)
            assert head is not None, "the audit head row is missing (migration 0005 makes it)"
            first_id = head.last_id - len(events) + 1
            prev = head.last_hash
            ids: list[int] = []
            for offset, event in enumerate(events):
                row = {
                    "id": first_id + offset, "at_us": _us(event.at), "actor": _cut(event.actor, 64),
                    "role": _cut(event.role, 16), "patient": _cut(event.patient, 64), "action": event.action[:64],
                    "target": event.target[:256], "client": event.client[:64], "status": int(event.status),
                    "outcome": event.outcome[:16],
                }
                digest = row_hash(prev, row)
                session.add(AuditEventRecord(**row, prev_hash=prev, hash=digest))
                prev = digest
                ids.append(first_id + offset)
            head.last_hash = prev
        return ids

    def entries(self, query: AuditQuery = AuditQuery()) -> list[AuditEntry]:
        """Rows matching ``query``, newest first."""
        table = AuditEventRecord
        statement = select(table).order_by(table.id.desc()).limit(query.limit)
        for column, value in ((table.actor, query.actor), (table.patient, query.patient),
                              (table.action, query.action), (table.outcome, query.outcome)):
            if value is not None:
                statement = statement.where(column == value)
        if query.since is not None:
            statement = statement.where(table.at_us >= _us(query.since))
        if query.until is not None:
            statement = statement.where(table.at_us <= _us(query.until))
        if query.before_id is not None:
            statement = statement.where(table.id < query.before_id)
        with self._sessions() as session:
            return [AuditEntry(r.id, _from_us(r.at_us), r.actor, r.role, r.patient, r.action, r.target, r.client,
                               r.status, r.outcome, r.hash) for r in session.scalars(statement)]

    def verify(self) -> ChainVerdict:
        """Walk the whole chain from the pruning anchor to the head; reports the first row found wrong."""
        with self._sessions() as session:
            head = session.get(AuditHead, 1)
            assert head is not None
            return verify_chain(self._rows(session, head.anchor_id), anchor_id=head.anchor_id,
                                anchor_hash=head.anchor_hash, last_id=head.last_id, last_hash=head.last_hash)

    @staticmethod
    def _rows(session: Session, after: int) -> Iterator[dict[str, object]]:
        while True:
            page = list(session.scalars(select(AuditEventRecord).where(AuditEventRecord.id > after)
                                        .order_by(AuditEventRecord.id).limit(_PAGE)))
            for record in page:
                yield {**{name: getattr(record, name) for name in CHAINED_FIELDS},
                       "prev_hash": record.prev_hash, "hash": record.hash}
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def prune(self, before: dt.datetime) -> int:
        """Delete rows older than ``before`` and move the anchor to the newest one deleted, so the chain of
        the rows kept still verifies; returns the number of rows deleted."""
        with self._sessions() as session, session.begin():
            session.execute(update(AuditHead).where(AuditHead.id == 1).values(anchor_id=AuditHead.anchor_id))
            head = session.get(AuditHead, 1)
            assert head is not None
            last = session.scalar(select(AuditEventRecord).where(AuditEventRecord.at_us < _us(before))
                                  .order_by(AuditEventRecord.id.desc()).limit(1))
            if last is None:
                return 0
            removed = session.execute(delete(AuditEventRecord).where(AuditEventRecord.id <= last.id))
            head.anchor_id, head.anchor_hash = last.id, last.hash
            return int(removed.rowcount or 0)  # type: ignore[attr-defined]

    def head(self) -> tuple[int, str]:
        """The id and hash of the newest row (``(0, GENESIS)`` before any); export it to pin the chain."""
        with self._sessions() as session:
            found = session.get(AuditHead, 1)
            return (found.last_id, found.last_hash) if found is not None else (0, GENESIS)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _us(at: dt.datetime) -> int:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // _MICROSECOND


def _from_us(value: int) -> dt.datetime:
    return _EPOCH + value * _MICROSECOND


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None
