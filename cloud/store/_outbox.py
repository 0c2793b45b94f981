"""The notification outbox, worker side: group queued items into messages, lease them, record the outcome.

Grouping is written before anything is sent: a message's items and idempotency key are fixed in
the database, so a worker that crashes after sending and before marking resends the very same
message (same key) when its lease lapses, never a regrouped one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cloud.alerting._messages import AlertSummary, OutgoingMessage
from cloud.store._alerting_models import NotificationDelivery, NotificationItem
from cloud.store._models import AlertRecord

__all__ = ["claim_deliveries", "mark_failed", "mark_sent", "outbox_counts"]


def _group(session: Session, at: dt.datetime, window: dt.timedelta) -> None:
    oldest = session.execute(
        select(NotificationItem.patient, NotificationItem.channel, NotificationItem.address,
               func.min(NotificationItem.created_at))
        .where(NotificationItem.status == "queued", NotificationItem.delivery_id.is_(None))
        .group_by(NotificationItem.patient, NotificationItem.channel, NotificationItem.address)
    ).all()
    for patient, channel, address, first in oldest:
        first_at = first if first.tzinfo is not None else first.replace(tzinfo=dt.UTC)
        if first_at > at - window:
            continue  # others of this patient may still join it
        delivery = NotificationDelivery(key=f"vb-{secrets.token_hex(16)}", patient=patient, channel=channel,
                                        address=address, created_at=at, status="pending", attempts=0,
                                        last_error="", next_attempt_at=at)
        session.add(delivery)
        session.flush()
        session.execute(
            update(NotificationItem)
            .where(NotificationItem.status == "queued", NotificationItem.delivery_id.is_(None),
                   NotificationItem.patient == patient, NotificationItem.channel == channel,
                   NotificationItem.address == address, NotificationItem.created_at <= first_at + window)
            .values(status="grouped", delivery_id=delivery.id)
        )


def claim_deliveries(session: Session, at: dt.datetime, lease: dt.timedelta, window: dt.timedelta,
                     limit: int) -> list[OutgoingMessage]:
    """Group what is ready, then lease up to ``limit`` due deliveries (in the caller's transaction)."""
    _group(session, at, window)
    due = session.scalars(
        select(NotificationDelivery.id).where(
            NotificationDelivery.status == "pending", NotificationDelivery.next_attempt_at <= at,
            NotificationDelivery.lease_until.is_(None) | (NotificationDelivery.lease_until <= at),
        ).order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id).limit(limit)
    ).all()
    claimed: list[int] = []
    for delivery_id in due:
        taken = session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id, NotificationDelivery.status == "pending",
                   NotificationDelivery.lease_until.is_(None) | (NotificationDelivery.lease_until <= at))
            .values(lease_until=at + lease, attempts=NotificationDelivery.attempts + 1)
        )
        if getattr(taken, "rowcount", 0) == 1:  # another worker may have leased it first
            claimed.append(delivery_id)
    if not claimed:
        return []
    items: dict[int, list[AlertSummary]] = defaultdict(list)
    rows = session.execute(
        select(NotificationItem, AlertRecord).join(AlertRecord, AlertRecord.id == NotificationItem.alert_id)
        .where(NotificationItem.delivery_id.in_(claimed), NotificationItem.status == "grouped")
        .order_by(NotificationItem.id)
    ).all()
    seen: set[tuple[int, int]] = set()
    for item, alert in rows:
        assert item.delivery_id is not None
        if (item.delivery_id, alert.id) in seen:
            continue  # an alert is told once per message, whatever steps named it
        seen.add((item.delivery_id, alert.id))
        items[item.delivery_id].append(AlertSummary(
            id=alert.id, patient=alert.patient, rule=alert.rule, metric=alert.metric, severity=alert.severity,
            state=alert.state, message=alert.message, purpose=item.purpose,
            fired_at=dt.datetime.fromtimestamp(alert.fired_ns / 1e9, dt.UTC), episodes=alert.episodes,
            late=alert.late,
        ))
    messages = []
    for delivery in session.scalars(select(NotificationDelivery).where(NotificationDelivery.id.in_(claimed))
                                    .order_by(NotificationDelivery.id)):
        if not items.get(delivery.id):
            delivery.status, delivery.lease_until = "cancelled", None  # everything in it was cancelled
            continue
        messages.append(OutgoingMessage(delivery.id, delivery.key, delivery.channel, delivery.address,
                                        delivery.patient, delivery.attempts, tuple(items[delivery.id])))
    return messages


def mark_sent(session: Session, delivery_id: int, at: dt.datetime) -> None:
    """Record that the delivery went out (even if it was cancelled while on its way: it did go)."""
    session.execute(update(NotificationDelivery).where(NotificationDelivery.id == delivery_id)
                    .values(status="sent", sent_at=at, lease_until=None, last_error=""))
    session.execute(update(NotificationItem).where(NotificationItem.delivery_id == delivery_id,
                                                   NotificationItem.status == "grouped").values(status="sent"))


def mark_failed(session: Session, delivery_id: int, at: dt.datetime, error: str,
                retry_at: dt.datetime | None) -> None:
    """Record a failed attempt; retry at ``retry_at`` or, when None, give the delivery up as failed."""
    values: dict[str, object] = {"last_error": error[:2000], "lease_until": None}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    session.execute(update(NotificationDelivery).where(NotificationDelivery.id == delivery_id,
                                                       NotificationDelivery.status == "pending").values(**values))
    if retry_at is None:
        session.execute(update(NotificationItem).where(NotificationItem.delivery_id == delivery_id,
                                                       NotificationItem.status == "grouped")
                        .values(status="failed", reason=error[:2000]))


def outbox_counts(session: Session) -> dict[str, int]:
    """Deliveries by status, plus items still ``queued`` for grouping."""
    counts = {status: 0 for status in ("pending", "sent", "failed", "cancelled")}
    for status, count in session.execute(select(NotificationDelivery.status, func.count())
                                         .group_by(NotificationDelivery.status)):
        counts[status] = int(count)
    counts["queued"] = int(session.scalar(select(func.count()).select_from(NotificationItem)
                                          .where(NotificationItem.status == "queued")) or 0)
    return counts
