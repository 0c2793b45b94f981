"""What a notifier sends and the outbox it takes it from (an interface the store implements)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AlertSummary", "DeliveryError", "Outbox", "OutgoingMessage"]


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """One alert as a message tells it."""

    id: int
    patient: str
    rule: str
    metric: str
    severity: str
    state: str
    message: str
    purpose: str
    """Why this message mentions it: fire, escalate or repeat."""
    fired_at: dt.datetime
    episodes: int
    late: bool


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one recipient about one patient's alerts; ``key`` is its idempotency key."""

    delivery_id: int
    key: str
    channel: str
    address: str
    patient: str
    attempt: int
    alerts: tuple[AlertSummary, ...]


class DeliveryError(Exception):
    """A send that did not go through. ``permanent``: retrying cannot help (a refused address, a 4xx)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Outbox(Protocol):
    """Where the notifier takes messages from and records what became of them."""

    def claim_deliveries(self, at: dt.datetime, *, lease: dt.timedelta, group_window: dt.timedelta,
                         limit: int) -> list[OutgoingMessage]:
        """Group queued items into messages and lease up to ``limit`` due messages to this worker."""
        ...

    def mark_sent(self, delivery_id: int, at: dt.datetime) -> None:
        """The message went out."""
        ...

    def mark_failed(self, delivery_id: int, at: dt.datetime, error: str, retry_at: dt.datetime | None) -> None:
        """The message did not go out; try again at ``retry_at`` (None: give up)."""
        ...

    def outbox_counts(self) -> dict[str, int]:
        """Deliveries by status, and queued items (``queued``)."""
        ...
