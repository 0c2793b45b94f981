"""Store: the relational side of the cloud (SQLite by default, PostgreSQL supported).

Every method is synchronous (SQLAlchemy 2); async callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, case, create_engine, delete, event, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerting._context import AlertingContext
from cloud.rules import AlertChange, PatientFacts, RuleState, StateKey
from cloud.store._alerting_store import AlertingStore, AlertQuery
from cloud.store._alerts import apply_alert_changes
from cloud.store._health import HealthUpdate, apply_health, gateway_state
from cloud.store._health_models import DeviceHealth, GatewayHealth
from cloud.store._hl7_outbox import Hl7Outbound, add_hl7_messages
from cloud.store._models import AlertRecord, DeadLetter, GatewayEpoch, IngestedBatch, RuleStateRecord
from vitals.senml import SENML_EPOCH_PREFIX

__all__ = [
    "AlertQuery",
    "BatchKey",
    "DeadLetterEntry",
    "IngestCommit",
    "IngestCommitResult",
    "LoggedBatch",
    "PatientLock",
    "PruneResult",
    "Retention",
    "Store",
    "open_store",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
_IN_CHUNK = 400  # keys per IN (...) query: well inside every database's parameter limit


_MIGRATION_LOCK = 0x76625F6D6967  # any constant all VitalBridge processes agree on ("vb_mig")
_migrating = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest Alembic revision.

    On PostgreSQL, processes starting together (API and ingest pods) take turns: a transaction-level
    advisory lock is held while Alembic reads the version and migrates, so the second one finds the
    schema at head instead of creating the same tables again. Alembic keeps its context in module
    globals, so the threads of one process take turns as well. On SQLite, processes opening one file
    take turns on an exclusive lock of a file beside it (``<database>.migrate-lock``).
    """
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with _migrating, _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


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
    health: HealthUpdate = field(default_factory=HealthUpdate)
    hl7: list[Hl7Outbound] = field(default_factory=list)
    """HL7 messages to queue in the same transaction (when an HL7 endpoint is configured)."""


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


class Store(AlertingStore):
    """Alerts, rule states, dead letters and the ingest log, over one SQLAlchemy engine.

    ``alerting`` (the policy and recipients) decides what alert changes notify; set it before use.
    """

    def __init__(self, engine: Engine, alerting: AlertingContext | None = None) -> None:
        self.engine = engine
        self.alerting = alerting or AlertingContext()
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
        """Stored rule states for ``keys`` (absent keys are fresh patients), read without holding them."""
        with self._session() as session:
            return _rule_states(session, keys)

    def lock_patients(self, patients: Iterable[str]) -> PatientLock:
        """Open a transaction that holds ``patients``' rule states until it commits or rolls back.

        Ingest workers on one database serialise on a patient this way: the second worker to
        reach a patient waits for the first to commit, then reads the state the first wrote, so
        no rule-state update is lost however a patient's batches are spread over the workers.
        """
        return PatientLock(self._session(), patients, self.alerting)

    def all_rule_states(self, rules: Iterable[str] | None = None) -> dict[StateKey, RuleState]:
        """Every stored rule state, or those of ``rules`` only (for the scheduler tick)."""
        statement = select(RuleStateRecord.rule, RuleStateRecord.patient, RuleStateRecord.state)
        if rules is not None:
            statement = statement.where(RuleStateRecord.rule.in_(sorted(set(rules))))
        with self._session() as session:
            return {(rule, patient): json.loads(state) for rule, patient, state in session.execute(statement)}

    def commit_ingest(self, commit: IngestCommit) -> IngestCommitResult:
        """Write a micro-batch's bookkeeping in one transaction: all of it or, on any error, none.

        Rule states written this way are not held while they were computed: the ingest uses
        :meth:`lock_patients` instead; this suits writes that carry no rule states.
        """
        return self.lock_patients(()).commit(commit)

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
        known: dict[tuple[str, str], int] = {}
        wanted = sorted(by_epoch)
        for start in range(0, len(wanted), _IN_CHUNK):
            rows = session.execute(
                select(table.c.gateway, table.c.epoch, table.c.high_seq)
                .where(tuple_(table.c.gateway, table.c.epoch).in_(wanted[start:start + _IN_CHUNK]))
            )
            known.update({(gateway, epoch): high for gateway, epoch, high in rows})
        backwards: list[tuple[BatchKey, int]] = []
        rows_out: list[dict[str, Any]] = []
        # In key order, as every worker does, so that two never wait for each other's rows (deadlock).
        for (gateway, epoch), seqs in sorted(by_epoch.items()):
            high = known.get((gateway, epoch), -1)
            # A new batch at or below the highest seen: not a replay (those were filtered), so the
            # gateway's counter went back (or a replay older than the dedup horizon came in).
            behind = [seq for seq in seqs if seq <= high]
            backwards.extend((BatchKey(gateway, epoch, seq), high) for seq in behind)
            rows_out.append({"gateway": gateway, "epoch": epoch, "high_seq": max(high, *seqs),
                             "first_seen": at, "last_seen": at, "backwards": len(behind)})
        # Merged by the database, not from what was read above: another worker may have moved the
        # epoch on since (PostgreSQL reads committed data, and waits only at this write), and the
        # highest sequence number must never go back, or seen() would miss a logged batch.
        _upsert(session, table, ["gateway", "epoch"], rows_out, merge=lambda new: {
            "high_seq": _greater(table.c.high_seq, new.high_seq),
            "last_seen": _greater(table.c.last_seen, new.last_seen),
            "backwards": table.c.backwards + new.backwards,
        })
        return backwards

    # -- gateway and device health ---------------------------------------------------------------------
    def gateway_health(self, gateway: str | None = None) -> list[GatewayHealth]:
        """Every gateway's health row (or ``gateway``'s only), by gateway id."""
        statement = select(GatewayHealth).order_by(GatewayHealth.gateway)
        if gateway is not None:
            statement = statement.where(GatewayHealth.gateway == gateway)
        with self._session() as session:
            return list(session.scalars(statement))

    def device_health(self, gateway: str | None = None, patient: str | None = None) -> list[DeviceHealth]:
        """Device health rows, of one gateway or one patient when asked, by gateway and device id."""
        statement = select(DeviceHealth).order_by(DeviceHealth.gateway, DeviceHealth.device)
        if gateway is not None:
            statement = statement.where(DeviceHealth.gateway == gateway)
        if patient is not None:
            statement = statement.where(DeviceHealth.patient == patient)
        with self._session() as session:
            return list(session.scalars(statement))

    def patient_facts(self, now: dt.datetime, silent_s: float) -> dict[str, PatientFacts]:
        """Each patient's gateway and its state (online, offline, unknown after ``silent_s`` of silence),
        from the devices seen for the patient, for the rules that judge a gateway going away."""
        with self._session() as session:
            gateways = {record.gateway: record for record in session.scalars(select(GatewayHealth))}
            pairs = session.execute(select(DeviceHealth.patient, DeviceHealth.gateway)
                                    .where(DeviceHealth.patient.is_not(None)).distinct()).all()
        facts: dict[str, PatientFacts] = {}
        for patient, gateway in sorted(pairs):
            record = gateways.get(gateway)
            if record is None or patient is None:
                continue
            state = gateway_state(record, now, silent_s)
            since = record.last_seen if state == "unknown" else record.state_since
            since = since if since.tzinfo is not None else since.replace(tzinfo=dt.UTC)
            fact = PatientFacts(gateway, state, int(since.timestamp() * 1e9))  # type: ignore[arg-type]
            known = facts.get(patient)
            # A patient seen through two gateways is judged by the one heard from most recently.
            if known is None or (fact.status_since_ns or 0) > (known.status_since_ns or 0):
                facts[patient] = fact
        return facts

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
            # A SenML pack is an epoch of its own (its content key): past the dedup horizon its row
            # keeps nothing worth having, and there would be one per pack for ever.
            session.execute(delete(GatewayEpoch).where(
                GatewayEpoch.epoch.startswith(SENML_EPOCH_PREFIX, autoescape=True),
                GatewayEpoch.last_seen < now - retention.ingest_log,
            ))
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


class PatientLock:
    """A transaction holding some patients' rule states: read them, then commit what they became.

    PostgreSQL takes one transaction-scoped advisory lock per patient, in one fixed order so two
    workers never deadlock; SQLite takes its database write lock (one writer at a time). Every
    method blocks: async callers run them in a worker thread, one call at a time.
    """

    def __init__(self, session: Session, patients: Iterable[str], alerting: AlertingContext) -> None:
        self._session = session
        self._alerting = alerting
        self._transaction = session.begin()
        try:
            _lock(session, sorted(set(patients)))
        except BaseException:
            self.rollback()
            raise

    def rule_states(self, keys: Iterable[StateKey]) -> dict[StateKey, RuleState]:
        """The held rule states for ``keys`` (absent keys are fresh patients)."""
        return _rule_states(self._session, keys)

    def commit(self, commit: IngestCommit) -> IngestCommitResult:
        """Write ``commit`` and end the transaction (rolled back, and the error raised, if any write fails)."""
        session = self._session
        result = IngestCommitResult()
        try:
            if commit.batches:
                result.backwards = Store._log_batches(session, commit.batches, commit.at)
            if commit.states:
                _upsert(session, RuleStateRecord.__table__, ["rule", "patient"], [
                    {"rule": rule, "patient": patient, "state": json.dumps(state), "updated_at": commit.at}
                    for (rule, patient), state in sorted(commit.states.items())
                ])
            result.opened = apply_alert_changes(session, commit.changes, commit.at, self._alerting)
            if commit.health:
                apply_health(session, commit.health, commit.at)
            session.add_all(
                DeadLetter(received_at=commit.at, topic=letter.topic[:256], reason=letter.reason,
                           size=len(letter.payload), payload=letter.payload)
                for letter in commit.dead_letters
            )
            if commit.hl7:
                add_hl7_messages(session, commit.hl7, commit.at)
            self._transaction.commit()
        except BaseException:
            self.rollback()
            raise
        self._session.close()
        return result

    def rollback(self) -> None:
        """Give the patients up without writing anything."""
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._session.close()


def _lock(session: Session, patients: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        if patients:
            keys = sorted({_lock_key(patient) for patient in patients})
            session.execute(text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"),
                            {"keys": keys})
    elif dialect == "sqlite":
        # A write statement (that changes nothing) takes SQLite's write lock for the transaction.
        session.execute(text("DELETE FROM rule_states WHERE 0"))


def _lock_key(patient: str) -> int:
    # A stable signed 64-bit key per patient (Python's hash() differs between processes).
    return int.from_bytes(hashlib.blake2b(patient.encode(), digest_size=8).digest(), "big", signed=True)


def _rule_states(session: Session, keys: Iterable[StateKey]) -> dict[StateKey, RuleState]:
    wanted = set(keys)
    patients = sorted({patient for _rule, patient in wanted})
    table = RuleStateRecord.__table__
    states: dict[StateKey, RuleState] = {}
    for start in range(0, len(patients), _IN_CHUNK):
        rows = session.execute(
            select(table.c.rule, table.c.patient, table.c.state)
            .where(table.c.patient.in_(patients[start:start + _IN_CHUNK]))
        )
        states.update({(rule, patient): json.loads(state) for rule, patient, state in rows
                       if (rule, patient) in wanted})
    return states


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the API) never block the ingest's writes
    cursor.execute("PRAGMA synchronous=FULL")  # a committed batch survives a power cut before its ack
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_store(url: str, alerting: AlertingContext | None = None) -> Store:
    """Connect to ``url`` (e.g. ``sqlite:///vitalbridge.db``), apply migrations, return a Store."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return Store(engine, alerting)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def _greater(stored: Any, new: Any) -> Any:
    """The larger of two column expressions (SQLite's max() and PostgreSQL's greatest() differ)."""
    return case((new > stored, new), else_=stored)


def _upsert(session: Session, table: Any, keys: list[str], rows: list[dict[str, Any]],
            merge: Callable[[Any], dict[str, Any]] | None = None) -> None:
    """Insert ``rows`` into ``table``, updating the other columns where ``keys`` already exist (one statement).

    ``merge(excluded)`` gives the update's ``SET`` expressions instead (``excluded`` holds the new
    row's values; columns it leaves out keep what is stored).
    """
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
    updates = (merge(statement.excluded) if merge is not None
               else {name: statement.excluded[name] for name in columns})
    statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
    session.execute(statement, rows)
