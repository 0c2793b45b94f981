"""Store: the relational side of the cloud (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.rules import AlertChange
from cloud.store._models import AlertRecord, DeadLetter, IngestedBatch

__all__ = ["AlertQuery", "Store", "open_store"]

_MIGRATIONS = Path(__file__).parent / "migrations"


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


class Store:
    """Alerts, dead letters and the ingest log, over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    # -- ingest log --------------------------------------------------------------------------------
    def seen_batch(self, gateway: str, seq: int) -> bool:
        """True when ``(gateway, seq)`` was already ingested."""
        with self._session() as session:
            return session.get(IngestedBatch, (gateway, seq)) is not None

    def record_batch(self, gateway: str, seq: int, patient: str, samples: int, at: dt.datetime) -> bool:
        """Log ``(gateway, seq)`` as ingested; False if it already was (a replay)."""
        with self._session() as session:
            session.add(IngestedBatch(gateway=gateway, seq=seq, patient=patient, samples=samples,
                                      received_at=at))
            try:
                session.commit()
            except IntegrityError:
                return False
        return True

    def ingested_samples(self) -> int:
        """Total values in every ingested batch."""
        with self._session() as session:
            return int(session.scalar(select(func.coalesce(func.sum(IngestedBatch.samples), 0))) or 0)

    # -- dead letters ------------------------------------------------------------------------------
    def add_dead_letter(self, topic: str, reason: str, payload: bytes, at: dt.datetime) -> int:
        """Keep a rejected message with its reason; returns its id."""
        with self._session() as session:
            letter = DeadLetter(received_at=at, topic=topic[:256], reason=reason, size=len(payload),
                                payload=payload)
            session.add(letter)
            session.commit()
            return letter.id

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        with self._session() as session:
            rows = session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
            return list(rows)

    def dead_letter_count(self) -> int:
        """How many messages were rejected."""
        with self._session() as session:
            return int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)

    # -- alerts ------------------------------------------------------------------------------------
    def apply_alert_changes(self, changes: Sequence[AlertChange]) -> list[AlertRecord]:
        """Upsert alert episodes by ``(rule, patient, episode_start_ns)``; returns newly opened ones."""
        opened: list[AlertRecord] = []
        with self._session() as session:
            for change in changes:
                record = session.scalar(
                    select(AlertRecord).where(
                        AlertRecord.rule == change.rule,
                        AlertRecord.patient == change.patient,
                        AlertRecord.episode_start_ns == change.episode_start_ns,
                    )
                )
                if record is None:
                    record = AlertRecord(rule=change.rule, patient=change.patient,
                                         episode_start_ns=change.episode_start_ns)
                    session.add(record)
                    opened.append(record)
                elif record.state == "resolved" and change.state == "open":
                    continue  # a replay of data from before the episode ended
                elif change.state == "open" and change.last_ns < record.last_ns:
                    continue  # a replay of an older state of the episode: keep the newer one
                record.metric = change.metric
                record.severity = change.severity
                record.fired_ns = change.fired_ns
                record.last_ns = max(change.last_ns, record.last_ns or 0)
                record.worst_value = change.worst_value
                record.threshold = change.threshold
                record.message = change.message
                record.state = change.state
                record.resolved_ns = change.resolved_ns
            session.commit()
        return opened

    def alerts(self, query: AlertQuery = AlertQuery()) -> list[AlertRecord]:
        """Alerts matching ``query``, newest first."""
        statement = select(AlertRecord).order_by(AlertRecord.fired_ns.desc()).limit(query.limit)
        if query.patient is not None:
            statement = statement.where(AlertRecord.patient == query.patient)
        if query.state is not None:
            statement = statement.where(AlertRecord.state == query.state)
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


def open_store(url: str) -> Store:
    """Connect to ``url`` (e.g. ``sqlite:///vitalbridge.db``), apply migrations, return a Store."""
    engine = create_engine(url)
    migrate(engine)
    return Store(engine)
