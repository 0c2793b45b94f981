"""Store: the relational side of the cloud (SQLite by default, PostgreSQL supported).

Every method is synchronous (SQLAlchemy 2); async callers run them in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, delete, event, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from cloud.rules import AlertChange, RuleState, StateKey
from cloud.store._alerts import apply_alert_changes
from cloud.store._models import AlertRecord, DeadLetter, GatewayEpoch, IngestedBatch, RuleStateRecord

__all__ = [
    "AlertQuery",
    "BatchKey",
    "DeadLetterEntry",
    "IngestCommit",
    "IngestCommitResult",
    "LoggedBatch",
    "PruneResult",
    "Retention",
    "Store",
    "open_store",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
_IN_CHUNK = 400  # keys per IN (...) query: well inside every database's parameter limit


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters for :meth:`Store.alerts`."""

    patient: str | None = None
    state: str | None = None
    limit: int = 100
    patients: frozenset[str] | None = None  # only these patients' alerts (the caller's visible ones)


@dataclass(frozen=True, slots=True, order=True)
class BatchKey:
    """What identifies a batch: ``(gateway, epoch, seq)``."""

    gateway: str
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """A batch accepted by the ingest, for the ingest log."""

    key: BatchKey
    patient: str
    samples: int


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """A refused message and why."""

    topic: str
    reason: str
    payload: bytes


@dataclass
class IngestCommit:
    """Everything one micro-batch changes in the store, written in one transaction."""

    at: dt.datetime
    batches: list[LoggedBatch] = field(default_factory=list)
    states: dict[StateKey, RuleState] = field(default_factory=dict)
    changes: list[AlertChange] = field(default_factory=list)
    dead_letters: list[DeadLetterEntry] = field(default_factory=list)


@dataclass
class IngestCommitResult:
    """What the transaction found: alerts newly opened, batches whose sequence went backwards."""

    opened: list[AlertRecord] = field(default_factory=list)
    backwards: list[tuple[BatchKey, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the store keeps bookkeeping: the dedup horizon and the dead letters' bounds."""

    ingest_log: dt.timedelta = dt.timedelta(days=14)
    dead_letter_payload: dt.timedelta = dt.timedelta(days=7)
    dead_letter: dt.timedelta = dt.timedelta(days=90)
    dead_letter_max_rows: int = 10_000


@dataclass(frozen=True, slots=True)
class PruneResult:
    """Rows removed (or payloads emptied) by one :meth:`Store.prune`."""

    ingest_log: int
    dead_letter_payloads: int
    dead_letters: int


class Store:
    """Alerts, rule states, dead letters and the ingest log, over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    def ping(self) -> None:
        """Run ``SELECT 1``; raises the driver's error when the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- ingest ------------------------------------------------------------------------------------
    def seen(self, keys: Iterable[BatchKey]) -> set[BatchKey]:
        """The keys among ``keys`` already in the ingest log.

        A key above its epoch's highest logged sequence number cannot be in the log, so only the
        others are looked up: in steady traffic that is one small query for the epochs.
        """
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        found: set[BatchKey] = set()
        with self._session() as session:
            high = self._high_seqs(session, {(key.gateway, key.epoch) for key in wanted})
            candidates = [key for key in wanted if key.seq <= high.get((key.gateway, key.epoch), -1)]
            log_table = IngestedBatch.__table__
            for start in range(0, len(candidates), _IN_CHUNK):
                chunk = candidates[start:start + _IN_CHUNK]
                rows = session.execute(
                    select(log_table.c.gateway, log_table.c.epoch, log_table.c.seq).where(
                        tuple_(log_table.c.gateway, log_table.c.epoch, log_table.c.seq).in_(
                            [(k.gateway, k.epoch, k.seq) for k in chunk]
                        )
                    )
                )
                found.update(BatchKey(gateway, epoch, int(seq)) for gateway, epoch, seq in rows)
        return found

    @staticmethod
    def _high_seqs(session: Session, epochs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        table = GatewayEpoch.__table__
        wanted = sorted(epochs)
        high: dict[tuple[str, str], int] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            rows = session.execute(
                select(table.c.gateway, table.c.epoch, table.c.high_seq)
                .where(tuple_(table.c.gateway, table.c.epoch).in_(wanted[start:start + _IN_CHUNK]))
            )
            high.update({(gateway, epoch): int(seq) for gateway, epoch, seq in rows})
        return high

    def rule_states(self, keys: Iterable[StateKey]) -> dict[StateKey, RuleState]:
        """Stored rule states for ``keys`` (absent keys are fresh patients)."""
        wanted = set(keys)
        patients = sorted({patient for _rule, patient in wanted})
        table = RuleStateRecord.__table__
        states: dict[StateKey, RuleState] = {}
        with self._session() as session:
            for start in range(0, len(patients), _IN_CHUNK):
                rows = session.execute(
                    select(table.c.rule, table.c.patient, table.c.state)
                    .where(table.c.patient.in_(patients[start:start + _IN_CHUNK]))
                )
                states.update({(rule, patient): json.loads(state) for rule, patient, state in rows
                               if (rule, patient) in wanted})
        return states

    def all_rule_states(self, rules: Iterable[str] | None = None) -> dict[StateKey, RuleState]:
        """Every stored rule state, or those of ``rules`` only (for the scheduler tick)."""
        statement = select(RuleStateRecord.rule, RuleStateRecord.patient, RuleStateRecord.state)
        if rules is not None:
            statement = statement.where(RuleStateRecord.rule.in_(sorted(set(rules))))
        with self._session() as session:
            return {(rule, patient): json.loads(state) for rule, patient, state in session.execute(statement)}

    def commit_ingest(self, commit: IngestCommit) -> IngestCommitResult:
        """Write a micro-batch's bookkeeping in one transaction: all of it or, on any error, none."""
        result = IngestCommitResult()
        with self._session() as session, session.begin():
            if commit.batches:
                result.backwards = self._log_batches(session, commit.batches, commit.at)
            if commit.states:
                _upsert(session, RuleStateRecord.__table__, ["rule", "patient"], [
                    {"rule": rule, "patient": patient, "state": json.dumps(state), "updated_at": commit.at}
                    for (rule, patient), state in commit.states.items()
                ])
            result.opened = apply_alert_changes(session, commit.changes)
            session.add_all(
                DeadLetter(received_at=commit.at, topic=letter.topic[:256], reason=letter.reason,
                           size=len(letter.payload), payload=letter.payload)
                for letter in commit.dead_letters
            )
        return result

    @staticmethod
    def _log_batches(session: Session, batches: Sequence[LoggedBatch], at: dt.datetime) -> list[tuple[BatchKey, int]]:
        received_ns = _ns(at)
        session.execute(
            insert(_table(IngestedBatch)),
            [{"gateway": b.key.gateway, "epoch": b.key.epoch, "seq": b.key.seq, "patient": b.patient,
              "samples": b.samples, "received_ns": received_ns} for b in batches],
        )
        by_epoch: dict[tuple[str, str], list[int]] = defaultdict(list)
        for batch in batches:
            by_epoch[(batch.key.gateway, batch.key.epoch)].append(batch.key.seq)
        table = GatewayEpoch.__table__
        known: dict[tuple[str, str], tuple[int, int, dt.datetime]] = {}
        wanted = sorted(by_epoch)
        for start in range(0, len(wanted), _IN_CHUNK):
            rows = session.execute(
                select(table.c.gateway, table.c.epoch, table.c.high_seq, table.c.backwards, table.c.first_seen)
                .where(tuple_(table.c.gateway, table.c.epoch).in_(wanted[start:start + _IN_CHUNK]))
            )
            known.update({(gateway, epoch): (high, behind, first) for gateway, epoch, high, behind, first in rows})
        backwards: list[tuple[BatchKey, int]] = []
        rows_out: list[dict[str, Any]] = []
        for (gateway, epoch), seqs in by_epoch.items():
            high, behind_before, first_seen = known.get((gateway, epoch), (-1, 0, at))
            # A new batch at or below the highest seen: not a replay (those were filtered), so the
            # gateway's counter went back (or a replay older than the dedup horizon came in).
            behind = [seq for seq in seqs if seq <= high]
            backwards.extend((BatchKey(gateway, epoch, seq), high) for seq in behind)
            rows_out.append({"gateway": gateway, "epoch": epoch, "high_seq": max(high, *seqs),
                             "first_seen": first_seen, "last_seen": at, "backwards": behind_before + len(behind)})
        _upsert(session, table, ["gateway", "epoch"], rows_out)
        return backwards

    def ingested_samples(self) -> int:
        """Total values in every batch in the ingest log."""
        with self._session() as session:
            return int(session.scalar(select(func.coalesce(func.sum(IngestedBatch.samples), 0))) or 0)

    def ingested_batches(self) -> int:
        """Batches in the ingest log."""
        with self._session() as session:
            return int(session.scalar(select(func.count()).select_from(IngestedBatch)) or 0)

    def gateway_epochs(self, gateway: str) -> list[GatewayEpoch]:
        """The spool epochs ``gateway`` has sent from, oldest first."""
        with self._session() as session:
            return list(session.scalars(
                select(GatewayEpoch).where(GatewayEpoch.gateway == gateway).order_by(GatewayEpoch.first_seen)
            ))

    def prune(self, now: dt.datetime, retention: Retention = Retention()) -> PruneResult:
        """Drop ingest-log rows past the dedup horizon and dead letters past their bounds."""
        with self._session() as session, session.begin():
            def count(statement: Any) -> int:
                return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]

            log_rows = count(delete(IngestedBatch).where(IngestedBatch.received_ns < _ns(now - retention.ingest_log)))
            payloads = count(
                update(DeadLetter)
                .where(DeadLetter.received_at < now - retention.dead_letter_payload,
                       func.length(DeadLetter.payload) > 0)
                .values(payload=b"")
            )
            letters = count(delete(DeadLetter).where(DeadLetter.received_at < now - retention.dead_letter))
            oldest_over = session.scalar(
                select(DeadLetter.id).order_by(DeadLetter.id.desc()).offset(retention.dead_letter_max_rows).limit(1)
            )
            if oldest_over is not None:
                letters += count(delete(DeadLetter).where(DeadLetter.id <= oldest_over))
        return PruneResult(log_rows, payloads, letters)

    # -- dead letters ------------------------------------------------------------------------------
    def add_dead_letter(self, topic: str, reason: str, payload: bytes, at: dt.datetime) -> None:
        """Keep one refused message with its reason."""
        self.commit_ingest(IngestCommit(at=at, dead_letters=[DeadLetterEntry(topic, reason, payload)]))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        with self._session() as session:
            rows = session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
            return list(rows)

    def dead_letter_count(self) -> int:
        """How many refused messages are kept."""
        with self._session() as session:
            return int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)

    # -- alerts ------------------------------------------------------------------------------------
    def apply_alert_changes(self, changes: Sequence[AlertChange]) -> list[AlertRecord]:
        """Apply alert changes in a transaction of their own; returns the alerts newly opened."""
        with self._session() as session, session.begin():
            return apply_alert_changes(session, changes)

    def alerts(self, query: AlertQuery = AlertQuery()) -> list[AlertRecord]:
        """Alerts matching ``query``, newest first."""
        statement = select(AlertRecord).order_by(AlertRecord.fired_ns.desc()).limit(query.limit)
        if query.patient is not None:
            statement = statement.where(AlertRecord.patient == query.patient)
        if query.state is not None:
            statement = statement.where(AlertRecord.state == query.state)
        if query.patients is not None:
            statement = statement.where(AlertRecord.patient.in_(sorted(query.patients)))
        with self._session() as session:
            return list(session.scalars(statement))

    def acknowledge(self, alert_id: int, by: str, at: dt.datetime) -> AlertRecord | None:
        """Mark an alert as seen by ``by``; None when there is no such alert."""
        with self._session() as session:
            record = session.get(AlertRecord, alert_id)
            if record is None:
                return None
            if record.acknowledged_at is None:
                record.acknowledged_at = at
                record.acknowledged_by = by
                session.commit()
            return record


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the API) never block the ingest's writes
    cursor.execute("PRAGMA synchronous=FULL")  # a committed batch survives a power cut before its ack
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_store(url: str) -> Store:
    """Connect to ``url`` (e.g. ``sqlite:///vitalbridge.db``), apply migrations, return a Store."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return Store(engine)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def _upsert(session: Session, table: Any, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, updating the other columns where ``keys`` already exist (one statement)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        statement: Any = sqlite_insert(table)
    elif dialect == "postgresql":
        statement = postgresql_insert(table)
    else:  # pragma: no cover - the store supports SQLite and PostgreSQL
        raise NotImplementedError(f"no upsert for the {dialect} dialect")
    columns = [name for name in rows[0] if name not in keys]
    statement = statement.on_conflict_do_update(index_elements=keys,
                                                set_={name: statement.excluded[name] for name in columns})
    session.execute(statement, rows)
