"""The notifier worker and the alert clock: supervised loops of the cloud service.

The notifier leases due messages from the outbox, sends each on its channel and records the
outcome. It marks a message sent only after the channel accepted it, so a crash between the two
resends it (same idempotency key) once the lease lapses; a failure is retried with jittered
exponential backoff up to ``max_attempts``, and a permanent refusal (a 4xx, an SMTP 5xx) is
given up at once. Attempts and the last error stay on the delivery, visible in the API and in
``/metrics``.

The alert clock moves every alert on with the time: escalation steps, repeats, acknowledgement
timeouts, closing after the quiet period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from cloud.alerting._messages import DeliveryError, Outbox, OutgoingMessage

__all__ = ["AlertClock", "Channel", "NotifierMetrics", "NotifierSettings", "NotifierWorker"]

log = logging.getLogger(__name__)


class Channel(Protocol):
    """Sends one message; raises :class:`DeliveryError` when it does not go through."""

    name: str

    async def send(self, message: OutgoingMessage) -> None:
        """Deliver ``message`` to ``message.address``."""
        ...


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """How often the notifier looks, how long a lease holds, how it retries (seconds)."""

    poll_s: float = 1.0
    lease_s: float = 120.0
    batch: int = 50
    max_attempts: int = 10
    retry_initial_s: float = 5.0
    retry_max_s: float = 900.0


class NotifierMetrics:
    """``vb_notifications_*`` in a Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("vb_notifications_sent", "Notifications delivered", ["channel"], registry=registry)
        self.failures = Counter("vb_notification_failures", "Failed delivery attempts", ["channel", "kind"],
                                registry=registry)
        self.deliveries = Gauge("vb_notification_deliveries", "Deliveries in the outbox by status", ["status"],
                                registry=registry)
        self.queued = Gauge("vb_notification_items_queued", "Outbox items waiting to be grouped", registry=registry)


class NotifierWorker:
    """Sends what the outbox holds. ``clock`` returns an aware datetime; ``group_window`` comes from the policy."""

    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], *, clock: Callable[[], dt.datetime],
                 group_window: dt.timedelta, settings: NotifierSettings = NotifierSettings(),
                 metrics: NotifierMetrics | None = None, rng: random.Random | None = None) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        self.clock = clock
        self.group_window = group_window
        self.settings = settings
        self.metrics = metrics
        self._rng = rng or random.Random()
        self.sent = 0
        self.failed_attempts = 0

    def backoff(self, attempt: int) -> dt.timedelta:
        """Jittered exponential delay before attempt ``attempt + 1``."""
        base = min(self.settings.retry_initial_s * 2 ** max(attempt - 1, 0), self.settings.retry_max_s)
        return dt.timedelta(seconds=base * (0.5 + self._rng.random()))

    async def run_once(self) -> int:
        """Claim due messages, send them, record the outcome; returns how many went out."""
        settings = self.settings
        claimed = await asyncio.to_thread(
            self.outbox.claim_deliveries, self.clock(), lease=dt.timedelta(seconds=settings.lease_s),
            group_window=self.group_window, limit=settings.batch)
        results = await asyncio.gather(*(self._deliver(message) for message in claimed))
        await self._observe()
        return sum(results)

    async def _deliver(self, message: OutgoingMessage) -> bool:
        channel = self.channels.get(message.channel)
        try:
            if channel is None:
                raise DeliveryError(f"no {message.channel} channel is configured", permanent=True)
            await channel.send(message)
        except DeliveryError as exc:
            await self._failed(message, str(exc), exc.permanent)
            return False
        except Exception as exc:  # a channel bug must not stop the others
            log.exception("notifier channel %s failed unexpectedly", message.channel)
            await self._failed(message, f"unexpected error: {type(exc).__name__}: {exc}", False)
            return False
        try:
            await asyncio.to_thread(self.outbox.mark_sent, message.delivery_id, self.clock())
        except Exception as exc:
            # Like a crash between sending and marking: when the lease lapses it goes again, same key.
            log.error("notification %s went out but could not be recorded (%s); it will be sent again with the "
                      "same idempotency key", message.key, exc)
        self.sent += 1
        if self.metrics is not None:
            self.metrics.sent.labels(message.channel).inc()
        return True

    async def _failed(self, message: OutgoingMessage, error: str, permanent: bool) -> None:
        self.failed_attempts += 1
        give_up = permanent or message.attempt >= self.settings.max_attempts
        now = self.clock()
        retry_at = None if give_up else now + self.backoff(message.attempt)
        await asyncio.to_thread(self.outbox.mark_failed, message.delivery_id, now, error, retry_at)
        if self.metrics is not None:
            self.metrics.failures.labels(message.channel, "permanent" if permanent else "transient").inc()
        log.warning("notification %s to %s %s failed (attempt %d): %s%s", message.key, message.channel,
                    message.address, message.attempt, error, "; giving up" if give_up else "")

    async def _observe(self) -> None:
        if self.metrics is None:
            return
        counts = await asyncio.to_thread(self.outbox.outbox_counts)
        for status in ("pending", "sent", "failed", "cancelled"):
            self.metrics.deliveries.labels(status).set(counts.get(status, 0))
        self.metrics.queued.set(counts.get("queued", 0))

    async def run(self) -> None:
        """Send until cancelled."""
        while True:
            await self.run_once()
            await asyncio.sleep(self.settings.poll_s)


class _Ticks(Protocol):
    def tick_alerts(self, at: dt.datetime) -> int: ...


class AlertClock:
    """Moves every alert on with the time, every ``every_s`` seconds."""

    def __init__(self, store: _Ticks, *, clock: Callable[[], dt.datetime], every_s: float = 5.0) -> None:
        self.store = store
        self.clock = clock
        self.every_s = every_s

    async def tick(self) -> int:
        """One pass; returns how many transitions and notifications it made."""
        return await asyncio.to_thread(self.store.tick_alerts, self.clock())

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self.every_s)
