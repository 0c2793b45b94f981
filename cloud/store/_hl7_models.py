"""The HL7 outbox table: one outgoing HL7 v2 message per row, written in the transaction that caused it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.store._models import Base
from cloud.store._types import UtcDateTime

__all__ = ["Hl7OutboxRecord"]


class Hl7OutboxRecord(Base):
    """One HL7 message to send, in ``id`` order.

    ``control_id`` (MSH-10) is unique: a batch stored again (it cannot be, the ingest log drops
    replays, but a re-run export or a second writer could try) adds no second row. ``status``:
    ``pending``, ``sent`` (acknowledged) or ``failed`` (refused by the receiver, or given up after
    ``attempts``; ``last_error`` says why). ``lease_until`` keeps two senders off one row.
    """

    __tablename__ = "hl7_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    control_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    patient: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
