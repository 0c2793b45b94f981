"""The HL7 sender: takes the outbox's rows in order, sends each over MLLP, marks it after its ACK.

A crash between the ACK and the mark resends the row when its lease lapses, with the same
control id (MSH-10), so the receiver can recognise the repeat; nothing is marked sent without an
ACK, so nothing is lost. Errors by kind: a refusal (AR/CR) fails that one row with the reason and
the run goes on; an application error (AE/CE) is retried up to ``max_attempts`` times, then failed;
an unreachable or silent receiver is retried without end (with jittered exponential backoff), and
holds back the rows after it, so they arrive in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from cloud.hl7._build import DEFAULT_HEADER, MessageHeader, batch_report, build_oru_r01
from cloud.hl7._mllp import Hl7SendError, MllpClient
from cloud.store import Hl7Outbound, PendingHl7
from vitals.samples import Batch

__all__ = ["BatchForwarder", "Hl7Metrics", "Hl7Outbox", "Hl7Sender", "Hl7SenderSettings"]

log = logging.getLogger(__name__)


class BatchForwarder:
    """The ingest's seam: the ``ORU^R01`` of each stored batch, to queue in the batch's own transaction."""

    def __init__(self, header: MessageHeader = DEFAULT_HEADER) -> None:
        self.header = header

    def __call__(self, batches: Sequence[Batch], at: dt.datetime) -> list[Hl7Outbound]:
        """One message per batch with numeric values; MSH-7 is ``at`` (the commit time)."""
        created_ns = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000
        messages: list[Hl7Outbound] = []
        for batch in batches:
            report = batch_report(batch, created_ns)
            if report is not None:
                messages.append(Hl7Outbound(report.control_id, "oru_r01", batch.patient,
                                            build_oru_r01(report, self.header)))
        return messages


class Hl7Outbox(Protocol):
    """What the sender needs of the outbox (:class:`cloud.store.Hl7OutboxStore`)."""

    def claim(self, at: dt.datetime, lease: dt.timedelta, limit: int) -> list[PendingHl7]:
        """Lease the oldest due rows in order."""
        ...

    def mark_sent(self, row_id: int, at: dt.datetime) -> None:
        """The row was acknowledged."""
        ...

    def mark_failed(self, row_id: int, error: str, retry_at: dt.datetime | None) -> None:
        """The row failed; retry at ``retry_at`` (None: give up)."""
        ...

    def release(self, row_ids: Sequence[int]) -> None:
        """Give leased rows back untouched."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows by status."""
        ...

    def prune(self, sent_before: dt.datetime, failed_before: dt.datetime) -> int:
        """Delete old sent and failed rows."""
        ...


@dataclass(frozen=True, slots=True)
class Hl7SenderSettings:
    """How often the sender looks, how long a lease holds, how it retries (seconds)."""

    poll_s: float = 1.0
    lease_s: float = 120.0
    batch: int = 100
    max_attempts: int = 20
    """Attempts an application error (AE/CE) gets before its row is failed; an unreachable receiver has no limit."""
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    keep_sent_days: float = 7.0
    """How long acknowledged messages stay in the outbox (for a look at what went out)."""
    keep_failed_days: float = 90.0
    prune_every_s: float = 3600.0


class Hl7Metrics:
    """``vb_hl7_*`` in a Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("vb_hl7_messages_sent", "HL7 messages acknowledged by the receiver", ["kind"],
                            registry=registry)
        self.failures = Counter("vb_hl7_send_failures", "Failed HL7 send attempts", ["kind"], registry=registry)
        self.outbox = Gauge("vb_hl7_outbox", "HL7 outbox rows by status", ["status"], registry=registry)


class Hl7Sender:
    """Sends what the HL7 outbox holds through ``client``. ``clock`` returns an aware datetime."""

    def __init__(self, outbox: Hl7Outbox, client: MllpClient, *, clock: Callable[[], dt.datetime],
                 settings: Hl7SenderSettings = Hl7SenderSettings(), metrics: Hl7Metrics | None = None,
                 rng: random.Random | None = None) -> None:
        self.outbox = outbox
        self.client = client
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self._rng = rng or random.Random()
        self.sent = 0
        self.failed_attempts = 0
        self.last_error = ""
        self.counts: dict[str, int] = {}

    def backoff(self, attempt: int) -> dt.timedelta:
        """Jittered exponential delay after attempt ``attempt``."""
        base = min(self.settings.retry_initial_s * 2 ** max(attempt - 1, 0), self.settings.retry_max_s)
        return dt.timedelta(seconds=base * (0.5 + self._rng.random()))

    async def run_once(self) -> int:
        """Claim due rows, send them in order until one fails transiently; returns how many were acknowledged."""
        settings = self.settings
        claimed = await asyncio.to_thread(self.outbox.claim, self.clock(), dt.timedelta(seconds=settings.lease_s),
                                          settings.batch)
        acknowledged = 0
        for position, row in enumerate(claimed):
            try:
                await self.client.send(row.body, row.control_id)
            except Hl7SendError as exc:
                held = await self._failed(row, exc)
                if held:  # the rest wait behind it, in order
                    await asyncio.to_thread(self.outbox.release, [r.id for r in claimed[position + 1:]])
                    break
                continue
            try:
                await asyncio.to_thread(self.outbox.mark_sent, row.id, self.clock())
            except Exception as exc:
                # Like a crash between the ACK and the mark: the row goes again, same control id.
                log.error("HL7 message %s was acknowledged but could not be recorded (%s); it will be sent again",
                          row.control_id, exc)
                await asyncio.to_thread(self.outbox.release, [r.id for r in claimed[position + 1:]])
                break
            acknowledged += 1
            self.sent += 1
            self.last_error = ""
            if self.metrics is not None:
                self.metrics.sent.labels(row.kind).inc()
        await self._observe()
        return acknowledged

    async def _failed(self, row: PendingHl7, exc: Hl7SendError) -> bool:
        """Record a failed attempt; True when the row waits to be retried (and holds the rest back)."""
        self.failed_attempts += 1
        self.last_error = str(exc)
        application_error = bool(exc.code)
        give_up = exc.permanent or (application_error and row.attempt >= self.settings.max_attempts)
        retry_at = None if give_up else self.clock() + self.backoff(row.attempt)
        await asyncio.to_thread(self.outbox.mark_failed, row.id, str(exc), retry_at)
        if self.metrics is not None:
            self.metrics.failures.labels("permanent" if give_up else "transient").inc()
        log.warning("HL7 message %s (attempt %d): %s%s", row.control_id, row.attempt, exc,
                    "; recorded as failed" if give_up else "")
        return not give_up

    async def _observe(self) -> None:
        self.counts = await asyncio.to_thread(self.outbox.counts)
        if self.metrics is not None:
            for status, count in self.counts.items():
                self.metrics.outbox.labels(status).set(count)

    def health(self) -> dict[str, Any]:
        """What ``/health`` shows: the endpoint, the connection, the outbox counts, the last error."""
        return {"endpoint": str(self.client.endpoint), "connected": self.client.connected, "sent": self.sent,
                "failed_attempts": self.failed_attempts, "outbox": dict(self.counts), "last_error": self.last_error}

    async def prune(self) -> int:
        """Drop acknowledged rows older than ``keep_sent_days`` and failed ones older than ``keep_failed_days``."""
        now = self.clock()
        return await asyncio.to_thread(self.outbox.prune, now - dt.timedelta(days=self.settings.keep_sent_days),
                                       now - dt.timedelta(days=self.settings.keep_failed_days))

    async def run(self) -> None:
        """Send until cancelled (and prune the outbox every ``prune_every_s``)."""
        pruned_at = -self.settings.prune_every_s
        loop = asyncio.get_running_loop()
        try:
            while True:
                if loop.time() - pruned_at >= self.settings.prune_every_s:
                    pruned_at = loop.time()
                    removed = await self.prune()
                    if removed:
                        log.info("HL7 outbox: removed %d old rows", removed)
                sent = await self.run_once()
                if not sent:
                    await asyncio.sleep(self.settings.poll_s)
        finally:
            await self.client.aclose()
