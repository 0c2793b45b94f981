"""One message in, one outcome out: the ingest logic, independent of how messages arrive."""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cloud.rules import Rule
from cloud.store import Store
from cloud.timeseries import InfluxV1Client, batch_to_lines
from vitals.codec import WireError, decode_batch
from vitals.samples import Batch, Sample
from vitals.topics import TopicError, gateway_of
from vitals.validate import check_plausible

__all__ = ["IngestProcessor", "IngestStats", "Outcome"]

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What happened to one message."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass
class IngestStats:
    """Counters since start."""

    stored_batches: int = 0
    stored_samples: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    alerts_opened: int = 0


class IngestProcessor:
    """Decode, validate, dedup, write to InfluxDB, evaluate rules, record the batch.

    The order makes replays harmless: points are keyed by time (a rewrite overwrites), alerts by
    episode, and the ingest log entry comes last, so a crash anywhere before it only means the same
    work is done again when the broker redelivers. ``clock`` returns Unix ns.
    """

    def __init__(
        self,
        store: Store,
        influx: InfluxV1Client,
        rules: Sequence[Rule],
        *,
        clock: Callable[[], int],
        on_alert: Callable[[Sequence[object]], None] | None = None,
    ) -> None:
        self.store = store
        self.influx = influx
        self.rules = list(rules)
        self.clock = clock
        self.on_alert = on_alert
        self.stats = IngestStats()

    def _reject(self, topic: str, payload: bytes, category: str, reason: str) -> Outcome:
        self.stats.rejected += 1
        self.stats.rejected_by_reason[category] += 1
        log.warning("rejected message on %s (%d bytes): %s", topic, len(payload), reason)
        self.store.add_dead_letter(topic, f"{category}: {reason}", payload, self.now())
        return Outcome.REJECTED

    def now(self) -> dt.datetime:
        """The processor clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock() / 1e9, dt.UTC)

    async def handle(self, topic: str, payload: bytes) -> Outcome:
        """Process one message from ``topic``; InfluxDB outages raise ``InfluxError`` (retry later)."""
        try:
            topic_gateway = gateway_of(topic)
        except TopicError as exc:
            return self._reject(topic, payload, "topic", str(exc))
        try:
            batch = decode_batch(payload)
        except WireError as exc:
            return self._reject(topic, payload, "decode", str(exc))
        if batch.gateway != topic_gateway:
            reason = f"batch names gateway {batch.gateway!r} but came on the topic of {topic_gateway!r}"
            return self._reject(topic, payload, "gateway", reason)
        problems = check_plausible(batch, now_ns=self.clock())
        if problems:
            return self._reject(topic, payload, "implausible", "; ".join(problems))
        if self.store.seen_batch(batch.gateway, batch.seq):
            self.stats.duplicates += 1
            log.info("duplicate batch %s/%d ignored", batch.gateway, batch.seq)
            return Outcome.DUPLICATE
        await self.influx.write_lines(batch_to_lines(batch))
        self._evaluate_rules(batch)
        if self.store.record_batch(batch.gateway, batch.seq, batch.patient, batch.sample_count, self.now()):
            self.stats.stored_batches += 1
            self.stats.stored_samples += batch.sample_count
            return Outcome.STORED
        self.stats.duplicates += 1
        return Outcome.DUPLICATE

    def _evaluate_rules(self, batch: Batch) -> None:
        wanted = set().union(*(rule.metrics for rule in self.rules)) if self.rules else set()
        samples: list[Sample] = []
        for stream in batch.streams:
            if stream.metric in wanted:
                samples.extend(stream.samples())
        if not samples:
            return
        samples.sort(key=lambda sample: sample.time_ns)
        for rule in self.rules:
            changes = rule.evaluate(batch.patient, [s for s in samples if s.metric in rule.metrics])
            if changes:
                opened = self.store.apply_alert_changes(changes)
                self.stats.alerts_opened += len(opened)
                for record in opened:
                    log.warning("alert for patient %s: %s", record.patient, record.message)
                if opened and self.on_alert is not None:
                    self.on_alert(opened)
