"""The ingest worker: micro-batches from the broker, processed, acknowledged; retries, stalls and upkeep.

One loop takes up to ``max_messages`` messages (or what arrives within ``max_wait_s`` of the
first), hands them to the :class:`IngestProcessor`, then acknowledges them to the broker and tells
each gateway which of its batches are stored. A transient error (InfluxDB or the database away)
holds the micro-batch and retries it with jittered exponential backoff, acknowledging nothing; a
micro-batch held longer than ``stall_s`` is a stall, visible in :meth:`health` and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud.ingest._errors import TransientError
from cloud.ingest._metrics import IngestMetrics
from cloud.ingest._mqtt import MqttIngestClient
from cloud.ingest._processor import Disposition, InboundMessage, IngestProcessor, Outcome, ProcessResult
from cloud.store import Retention
from vitals.acks import MAX_ACK_SEQS, StoredAck, encode_ack
from vitals.senml import is_senml_epoch
from vitals.topics import ack_topic

__all__ = ["IngestStats", "IngestWorker", "WorkerSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How the worker batches, retries, detects stalls and keeps its bookkeeping small (seconds)."""

    max_messages: int = 1000
    max_wait_s: float = 0.05
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    stall_s: float = 60.0
    tick_every_s: float = 30.0
    prune_every_s: float = 3600.0
    retention: Retention = field(default_factory=Retention)


@dataclass
class IngestStats:
    """Counters since start."""

    stored_batches: int = 0
    stored_samples: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    alerts_opened: int = 0
    micro_batches: int = 0
    transient_errors: int = 0
    sequence_backwards: int = 0
    health_messages: int = 0


class IngestWorker:
    """Runs the ingest loop and its upkeep (rule ticks, pruning); ``clock`` returns Unix ns."""

    def __init__(
        self,
        client: MqttIngestClient,
        processor: IngestProcessor,
        metrics: IngestMetrics,
        settings: WorkerSettings = WorkerSettings(),
        *,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.processor = processor
        self.metrics = metrics
        self.settings = settings
        self.stats = IngestStats()
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._held_since: float | None = None
        self._busy = False
        self.last_error = ""
        self.restarts = 0
        # Read when scraped, so /metrics always says what /health says.
        metrics.stalled.set_function(lambda: 1.0 if self.stalled else 0.0)
        metrics.queue_depth.set_function(lambda: float(self.client.depth))
        metrics.connected.set_function(lambda: 1.0 if self.client.connected else 0.0)

    # -- health ---------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """True when nothing received is waiting or being handled."""
        return not self._busy and self.client.queued == 0 and self.client.depth == 0

    @property
    def stalled_for_s(self) -> float:
        """How long the micro-batch in hand has been held (0 when none is)."""
        return 0.0 if self._held_since is None else self._monotonic() - self._held_since

    @property
    def stalled(self) -> bool:
        """True when a micro-batch has been held longer than ``stall_s``."""
        return self.stalled_for_s > self.settings.stall_s

    def health(self) -> dict[str, Any]:
        """What ``/health`` says of the ingest."""
        return {
            "client_id": self.client.client_id,
            "broker_connected": self.client.connected,
            "stalled": self.stalled,
            "held_for_s": round(self.stalled_for_s, 1),
            "in_flight": self.client.depth,
            "last_error": self.last_error or self.client.last_error,
            "restarts": self.restarts,
        }

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Take, process and acknowledge micro-batches until cancelled."""
        settings = self.settings
        while True:
            taken = await self.client.take(settings.max_messages, settings.max_wait_s)
            if taken:
                await self._handle(taken)

    async def _handle(self, taken: list[tuple[int, InboundMessage]]) -> None:
        self._busy = True
        started = self._monotonic()
        self._held_since = started
        delay = self.settings.retry_initial_s
        pending = taken
        try:
            while pending:
                pending = [item for item in pending if self.client.is_current(item[0])]
                if not pending:
                    break  # the connection went: the broker redelivers all of them
                try:
                    result = await self.processor.process([message for _, message in pending])
                except TransientError as exc:
                    self._note_transient(exc, delay)
                    await asyncio.sleep(delay * (0.5 + self._rng.random()))
                    delay = min(delay * 2, self.settings.retry_max_s)
                    continue
                done, pending = pending[:len(result.dispositions)], pending[len(result.dispositions):]
                self.client.ack(done)
                self._acknowledge_gateways(result.dispositions)
                self._count(result, len(done))
                self._held_since = self._monotonic() if pending else None
                self.metrics.last_progress.set(time.time())
                self.last_error = ""
                delay = self.settings.retry_initial_s
        finally:
            self._busy = False
            self._held_since = None
            self.metrics.microbatch_seconds.observe(self._monotonic() - started)

    def _note_transient(self, exc: TransientError, delay: float) -> None:
        self.metrics.errors.labels(exc.store).inc()
        self.stats.transient_errors += 1
        first = self.last_error != str(exc)
        self.last_error = str(exc)
        level = logging.ERROR if self.stalled else logging.WARNING
        if first or self.stalled:
            log.log(level, "ingest holding %d messages (%s); retrying in about %.1f s%s", self.client.depth, exc,
                    delay, f" - stalled for {self.stalled_for_s:.0f} s" if self.stalled else "")

    def _acknowledge_gateways(self, dispositions: Sequence[Disposition]) -> None:
        stored: dict[tuple[str, str], list[int]] = defaultdict(list)
        refused: dict[tuple[str, str], list[int]] = defaultdict(list)
        for disposition in dispositions:
            key = disposition.key
            if key is None or disposition.gateway != key.gateway:
                continue  # nothing that names one of the sender's batches
            if is_senml_epoch(key.epoch):
                continue  # a third-party SenML gateway keeps no spool to acknowledge
            target = refused if disposition.outcome is Outcome.REFUSED else stored
            target[(key.gateway, key.epoch)].append(key.seq)
        for gateway, epoch in {*stored, *refused}:
            named = [(seq, True) for seq in stored.get((gateway, epoch), ())]
            named += [(seq, False) for seq in refused.get((gateway, epoch), ())]
            for start in range(0, len(named), MAX_ACK_SEQS):  # one acknowledgement names a bounded number
                part = named[start:start + MAX_ACK_SEQS]
                ack = StoredAck(epoch, tuple(seq for seq, ok in part if ok), tuple(seq for seq, ok in part if not ok))
                self.client.publish(ack_topic(gateway), encode_ack(ack), qos=1)
                self.metrics.acks_sent.inc()

    def _count(self, result: ProcessResult, messages: int) -> None:
        stats, metrics = self.stats, self.metrics
        stats.micro_batches += 1
        metrics.microbatch_messages.observe(messages)
        for disposition in result.dispositions:
            metrics.messages.labels(disposition.outcome.value).inc()
            if disposition.outcome is Outcome.STORED:
                stats.stored_batches += 1
                stats.stored_samples += disposition.samples
                metrics.samples.inc(disposition.samples)
            elif disposition.outcome is Outcome.DUPLICATE:
                stats.duplicates += 1
            elif disposition.outcome is Outcome.HEALTH:
                stats.health_messages += 1
            else:
                stats.rejected += 1
                stats.rejected_by_reason[disposition.category] += 1
                metrics.refused.labels(disposition.category).inc()
                log.warning("refused a message from %s (%s): %s", disposition.gateway or "an unknown sender",
                            disposition.category, disposition.reason[:300])
        stats.alerts_opened += len(result.opened)
        metrics.alerts_opened.inc(len(result.opened))
        for record in result.opened:
            log.warning("alert for patient %s: %s", record.patient, record.message)
        metrics.late_windows.inc(result.late_windows)
        if result.backwards:
            stats.sequence_backwards += len(result.backwards)
            metrics.backwards.inc(len(result.backwards))
            for key, high in result.backwards[:5]:
                log.warning("gateway %s (epoch %r): batch %d is not above the highest seen (%d); stored anyway",
                            key.gateway, key.epoch, key.seq, high)

    # -- upkeep ---------------------------------------------------------------------------------
    async def tick(self) -> int:
        """Advance every rule state to now (time-driven rules); returns how many alerts it opened."""
        opened = await self.processor.tick()
        self.stats.alerts_opened += len(opened)
        self.metrics.alerts_opened.inc(len(opened))
        return len(opened)

    async def prune(self) -> None:
        """Drop bookkeeping past its retention (the dedup horizon, old dead letters)."""
        now = self.processor.now()
        pruned = await asyncio.to_thread(self.processor.store.prune, now, self.settings.retention)
        self.metrics.pruned.labels("ingest_log").inc(pruned.ingest_log)
        self.metrics.pruned.labels("dead_letters").inc(pruned.dead_letters)
        if pruned.ingest_log or pruned.dead_letters or pruned.dead_letter_payloads:
            log.info("pruned %d ingest-log rows, %d dead letters and %d dead-letter payloads", pruned.ingest_log,
                     pruned.dead_letters, pruned.dead_letter_payloads)

    async def upkeep(self) -> None:
        """Tick the rules and prune on their intervals, until cancelled; failures are logged and retried."""
        settings = self.settings
        next_tick = next_prune = self._monotonic()
        while True:
            now = self._monotonic()
            try:
                if now >= next_tick:
                    next_tick = now + settings.tick_every_s
                    await self.tick()
                if now >= next_prune:
                    next_prune = now + settings.prune_every_s
                    await self.prune()
            except Exception as exc:
                log.warning("ingest upkeep failed (%s); trying again later", exc)
            await asyncio.sleep(min(1.0, settings.tick_every_s, settings.prune_every_s))


