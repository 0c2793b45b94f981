"""Tables of the alert lifecycle: transitions (append-only), the notification outbox, deliveries, silences."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.store._models import Base
from cloud.store._types import UtcDateTime

__all__ = ["AlertTransition", "NotificationDelivery", "NotificationItem", "SilenceRecord"]


class AlertTransition(Base):
    """One step of an alert's life: from which state to which, who or what moved it, when and why.

    Rows are only ever added; their ids order them (the live stream resumes from an id).
    """

    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    patient: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class NotificationItem(Base):
    """The outbox: one alert to tell one recipient, written in the transaction of the alert change.

    ``status``: ``queued`` (waiting to be grouped into a delivery), ``grouped`` (in ``delivery_id``),
    ``suppressed`` (silenced, inhibited or nobody to tell; ``reason`` says which) or ``cancelled``
    (acknowledged or resolved by a clinician before it went).
    """

    __tablename__ = "notification_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    patient: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(512))
    purpose: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("notification_deliveries.id"), nullable=True,
                                                    index=True)


class NotificationDelivery(Base):
    """One message to one recipient, covering one or more outbox items of one patient.

    ``key`` is the idempotency key: a resend after a crash between sending and marking carries the
    same one, so the receiver can recognise it. ``status``: ``pending``, ``sent``, ``failed`` (gave up
    after ``attempts``; ``last_error`` says why) or ``cancelled``. ``lease_until`` keeps two workers
    from sending the same delivery at once; a lease that lapses (a crashed worker) frees it again.
    """

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    patient: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SilenceRecord(Base):
    """A patient's alerts (optionally one rule's or one metric's) send nothing from ``starts_at`` to ``ends_at``.

    Deleting a silence ends it (``deleted_at``/``deleted_by``); the row stays as the record of who silenced what.
    """

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metric: Mapped[str | None] = mapped_column(String(64), nullable=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

