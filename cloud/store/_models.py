"""Tables of the relational store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloud.store._types import UtcDateTime

__all__ = ["AlertRecord", "Base", "DeadLetter", "GatewayEpoch", "IngestedBatch", "RuleStateRecord"]


class Base(DeclarativeBase):
    """Declarative base of every table."""


class AlertRecord(Base):
    """One alert: a rule fired for a patient from ``episode_start_ns`` on, until the alert closes.

    ``(rule, patient, episode_start_ns)`` is unique, so replayed data updates the same alert.
    ``late`` marks an episode found in backfilled data (it happened while the gateway was away).
    The lifecycle columns (``state`` through ``manual_episode_ns``) belong to ``cloud.alerting``:
    ``state`` is pending, firing, acknowledged, resolved or closed; a later episode of the same
    rule before the alert closes reopens it (``episode_ns`` is the current one, ``episodes`` counts them).
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("rule", "patient", "episode_start_ns", name="uq_alert_episode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    patient: Mapped[str] = mapped_column(String(64), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    episode_start_ns: Mapped[int] = mapped_column(BigInteger)
    fired_ns: Mapped[int] = mapped_column(BigInteger)
    last_ns: Mapped[int] = mapped_column(BigInteger)
    worst_value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="firing", index=True)
    resolved_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(32), default="value")
    episode_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    episodes: Mapped[int] = mapped_column(Integer, default=1)
    changed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    firing_since: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    last_notified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    manual_episode_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rule_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The hash of the rule configuration that last judged this alert."""
    settings_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The version of the patient's settings it judged with (None: the patient had no settings)."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every update: a writer that read an older row fails and retries (the clock against an ack)."""

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative hook


class DeadLetter(Base):
    """A message the ingest refused, kept with the reason so nothing vanishes unexplained.

    ``size`` is the payload's original size; ``payload`` is emptied once its retention has passed.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    topic: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class IngestedBatch(Base):
    """The ingest log: one row per accepted ``(gateway, epoch, seq)``, kept for the dedup horizon."""

    __tablename__ = "ingest_log"

    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    patient: Mapped[str] = mapped_column(String(64))
    samples: Mapped[int] = mapped_column(Integer)
    received_ns: Mapped[int] = mapped_column(BigInteger, index=True)


class GatewayEpoch(Base):
    """Each spool epoch a gateway has sent from: the highest sequence number seen, first and last contact."""

    __tablename__ = "gateway_epochs"

    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(64), primary_key=True)
    high_seq: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    backwards: Mapped[int] = mapped_column(Integer, default=0)


class RuleStateRecord(Base):
    """A rule's state for one patient (JSON), stored in the transaction of the batches that changed it."""

    __tablename__ = "rule_states"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
