"""A micro-batch of messages in, one outcome per message out: the ingest logic, apart from how messages arrive.

For each micro-batch: triage every message (decode, validate, limits), drop replays by
``(gateway, epoch, seq)``, write every new point in as few InfluxDB requests as the chunk size
allows, run the rules over each patient's new samples from their stored states, and record the
batches, the rule states, the alert changes, the gateways' health (their status and events
messages, and the devices the batches came from) and the dead letters in one database
transaction. Only then may the caller acknowledge the messages.

The rule states are read and written inside one transaction that holds the micro-batch's
patients (:meth:`Store.lock_patients`), so several ingest workers sharing one subscription never
lose a state update when one patient's batches reach different workers.

Errors by kind: a message InfluxDB or the database refuses for good is found by splitting the
micro-batch and dead-lettered alone; an unreachable or busy store raises :class:`TransientError`
with nothing recorded, so the caller retries the whole micro-batch (points are keyed by time, so
writing them again is harmless).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cloud.ingest._errors import StoreRefused, TransientError, classify_store_error
from cloud.ingest._settings_cache import SettingsCache
from cloud.ingest._triage import Accepted, IngestLimits, Refused, triage
from cloud.registry import GatewayBinding
from cloud.rules import AlertChange, LateSpan, PatientSettings, RuleEngine, merge_spans
from cloud.store import (
    AlertRecord,
    BatchKey,
    DeadLetterEntry,
    DeviceSeen,
    HealthUpdate,
    Hl7Outbound,
    IngestCommit,
    IngestCommitResult,
    LoggedBatch,
    PatientLock,
    Store,
)
from cloud.timeseries import InfluxRejected, InfluxUnavailable, InfluxV1Client, batch_to_lines, read_samples
from vitals.health import GatewayEvent, GatewayStatus, HealthMessageError, decode_event, decode_status
from vitals.samples import Batch, Sample
from vitals.topics import TopicError, gateway_of

__all__ = ["BindingLookup", "Disposition", "InboundMessage", "IngestProcessor", "Outcome", "OutboundMessages",
           "ProcessResult", "registry_refusal"]

BindingLookup = Callable[[Iterable[str]], Mapping[str, GatewayBinding | None]]
"""Each gateway's registry binding (None: not registered), e.g. :meth:`cloud.registry.GatewayBindings.lookup`."""

OutboundMessages = Callable[[Sequence[Batch], dt.datetime], list[Hl7Outbound]]
"""The messages to queue for stored batches, committed with them (e.g. :func:`cloud.hl7.batch_messages`)."""

log = logging.getLogger(__name__)

_LATE_READS_AT_ONCE = 8


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One MQTT message as the ingest sees it; ``mid``/``qos`` are what acknowledging it needs.

    ``content_type`` is the MQTT 5 content type the sender set (empty when none).
    """

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    content_type: str = ""


class Outcome(enum.Enum):
    """What happened to one message."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    HEALTH = "health"
    """A status or event message, recorded as gateway and device health (not a batch)."""


@dataclass(frozen=True, slots=True)
class Disposition:
    """The outcome of one message. ``gateway`` is the sender named by the topic (where it names one)."""

    outcome: Outcome
    gateway: str | None = None
    key: BatchKey | None = None
    samples: int = 0
    category: str = ""
    reason: str = ""


@dataclass
class ProcessResult:
    """Outcomes of the first ``len(dispositions)`` messages handed in (the rest wait for the next call)."""

    dispositions: list[Disposition] = field(default_factory=list)
    opened: list[AlertRecord] = field(default_factory=list)
    alert_changes: int = 0
    late_windows: int = 0
    backwards: list[tuple[BatchKey, int]] = field(default_factory=list)


class IngestProcessor:
    """Turns micro-batches of messages into stored points, rule states and alerts. ``clock`` returns Unix ns."""

    def __init__(
        self,
        store: Store,
        influx: InfluxV1Client,
        engine: RuleEngine,
        *,
        clock: Callable[[], int],
        limits: IngestLimits | None = None,
        max_values_per_call: int = 200_000,
        write_chunk_lines: int = 5000,
        bindings: BindingLookup | None = None,
        gateway_silent_s: float = 900.0,
        outbound: OutboundMessages | None = None,
        settings: SettingsCache | None = None,
    ) -> None:
        self.store = store
        self.influx = influx
        self.engine = engine
        self.clock = clock
        self.limits = limits or IngestLimits()
        self.max_values_per_call = max_values_per_call
        self.write_chunk_lines = write_chunk_lines
        self.bindings = bindings  # None: no registry check (every registered or unregistered gateway is taken)
        self.gateway_silent_s = gateway_silent_s
        self.outbound = outbound  # None: nothing is forwarded (no HL7 endpoint)
        self.settings = settings  # None: every patient is judged with the engine's own settings

    def now(self) -> dt.datetime:
        """The processor clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock() / 1e9, dt.UTC)

    async def process(self, messages: Sequence[InboundMessage]) -> ProcessResult:
        """Handle a prefix of ``messages`` (all of them unless their values pass the per-call bound).

        Raises :class:`TransientError` when InfluxDB or the database is unavailable: nothing was
        recorded, and the same messages may be handed in again.
        """
        if not messages:
            return ProcessResult()
        try:
            return await self._process(messages)
        except TransientError:
            raise
        except (StoreRefused, Exception) as exc:
            if len(messages) == 1:
                return await self._refuse_alone(messages[0], exc)
            log.warning("micro-batch of %d messages failed (%s); splitting it to find the cause",
                        len(messages), exc)
            half = len(messages) // 2
            first = await self.process(messages[:half])
            if len(first.dispositions) < half:
                return first
            second = await self.process(messages[half:])
            first.dispositions.extend(second.dispositions)
            first.opened.extend(second.opened)
            first.alert_changes += second.alert_changes
            first.late_windows += second.late_windows
            first.backwards.extend(second.backwards)
            return first

    async def _refuse_alone(self, message: InboundMessage, exc: BaseException) -> ProcessResult:
        if isinstance(exc, StoreRefused):
            category, reason = "store", str(exc)
        else:
            log.error("unexpected error while ingesting a message on %s", message.topic, exc_info=exc)
            category, reason = "internal", f"unexpected error: {type(exc).__name__}: {exc}"
        commit = IngestCommit(at=self.now(), dead_letters=[DeadLetterEntry(message.topic, f"{category}: {reason}",
                                                                           message.payload)])
        await self._commit(commit)
        return ProcessResult([Disposition(Outcome.REFUSED, _topic_gateway(message.topic), None, 0, category, reason)])

    async def _process(self, messages: Sequence[InboundMessage]) -> ProcessResult:
        now_ns = self.clock()
        at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
        dispositions: list[Disposition | None] = []
        dead: list[DeadLetterEntry] = []
        accepted: list[_Item] = []
        values = 0
        statuses: list[GatewayStatus] = []
        events: list[GatewayEvent] = []
        for message in messages:
            if values >= self.max_values_per_call:
                break  # bounded memory and time per call: the rest waits for the next one
            kind = message.topic.rpartition("/")[2]
            if kind in ("status", "events"):
                dispositions.append(self._health(message, kind, statuses, events, dead))
                continue
            verdict = triage(message.topic, message.payload, now_ns=now_ns, limits=self.limits,
                             content_type=message.content_type)
            if isinstance(verdict, Refused):
                dispositions.append(self._refusal(message, verdict))
                dead.append(DeadLetterEntry(message.topic, f"{verdict.category}: {verdict.reason}", message.payload))
                continue
            assert isinstance(verdict, Accepted)
            item = _Item(len(dispositions), verdict.batch)
            accepted.append(item)
            dispositions.append(None)
            values += item.samples

        accepted = await self._check_registry(accepted, messages, dispositions, dead)
        fresh = await self._drop_replays(accepted, dispositions)
        for item, reason in await self._write(fresh):
            dispositions[item.index] = Disposition(Outcome.REFUSED, item.batch.gateway, item.key, 0, "timeseries",
                                                   reason)
            message = messages[item.index]
            dead.append(DeadLetterEntry(message.topic, f"timeseries: {reason}", message.payload))
        stored = [item for item in fresh if dispositions[item.index] is None]
        for item in stored:
            dispositions[item.index] = Disposition(Outcome.STORED, item.batch.gateway, item.key, item.samples)

        health = HealthUpdate(statuses, events, [_device_seen(item.batch) for item in stored])
        commit = IngestCommit(at=at, batches=[LoggedBatch(item.key, item.batch.patient, item.samples)
                                              for item in stored], dead_letters=dead, health=health)
        if self.outbound is not None and stored:
            commit.hl7 = self.outbound([item.batch for item in stored], at)
        committed, late_windows = await self._evaluate_and_commit([item.batch for item in stored], commit)
        final = [d for d in dispositions if d is not None]
        assert len(final) == len(dispositions)
        return ProcessResult(final, committed.opened, len(commit.changes), late_windows, committed.backwards)

    @staticmethod
    def _health(message: InboundMessage, kind: str, statuses: list[GatewayStatus], events: list[GatewayEvent],
                dead: list[DeadLetterEntry]) -> Disposition:
        gateway = _topic_gateway(message.topic)
        try:
            if gateway is None:
                raise HealthMessageError(f"topic {message.topic!r} does not name a gateway")
            if kind == "status":
                statuses.append(decode_status(message.payload, gateway))
            else:
                events.append(decode_event(message.payload, gateway))
        except HealthMessageError as exc:
            dead.append(DeadLetterEntry(message.topic, f"health: {exc}", message.payload))
            return Disposition(Outcome.REFUSED, gateway, None, 0, "health", str(exc))
        return Disposition(Outcome.HEALTH, gateway)

    @staticmethod
    def _refusal(message: InboundMessage, verdict: Refused) -> Disposition:
        key = BatchKey(*verdict.key) if verdict.key is not None else None
        return Disposition(Outcome.REFUSED, _topic_gateway(message.topic), key, 0, verdict.category, verdict.reason)

    async def _check_registry(self, accepted: list[_Item], messages: Sequence[InboundMessage],
                              dispositions: list[Disposition | None], dead: list[DeadLetterEntry]) -> list[_Item]:
        """Refuse batches from unknown or revoked gateways, or for patients not bound to their gateway."""
        if self.bindings is None or not accepted:
            return accepted
        try:
            found = await asyncio.to_thread(self.bindings, {item.batch.gateway for item in accepted})
        except Exception as exc:
            raise classify_store_error(exc) from exc
        kept: list[_Item] = []
        for item in accepted:
            refusal = registry_refusal(found.get(item.batch.gateway), item.batch.gateway, item.batch.patient)
            if refusal is None:
                kept.append(item)
                continue
            message = messages[item.index]
            dispositions[item.index] = Disposition(Outcome.REFUSED, item.batch.gateway, item.key, 0,
                                                   refusal.category, refusal.reason)
            dead.append(DeadLetterEntry(message.topic, f"{refusal.category}: {refusal.reason}", message.payload))
        return kept

    async def _drop_replays(self, accepted: list[_Item], dispositions: list[Disposition | None]) -> list[_Item]:
        if not accepted:
            return []
        try:
            seen = await asyncio.to_thread(self.store.seen, [item.key for item in accepted])
        except Exception as exc:
            raise classify_store_error(exc) from exc
        fresh: list[_Item] = []
        for item in accepted:
            if item.key in seen:
                dispositions[item.index] = Disposition(Outcome.DUPLICATE, item.batch.gateway, item.key, item.samples)
            else:
                seen.add(item.key)  # the same batch twice in one micro-batch is a replay too
                fresh.append(item)
        return fresh

    async def _write(self, items: list[_Item]) -> list[tuple[_Item, str]]:
        """Write the items' points; returns the refused ones with InfluxDB's reason."""
        if not items:
            return []
        lines = [line for item in items for line in batch_to_lines(item.batch)]
        try:
            await self.influx.write_lines(lines, retries=0, chunk_lines=self.write_chunk_lines)
        except InfluxUnavailable as exc:
            raise TransientError(str(exc), "influxdb") from exc
        except InfluxRejected as exc:
            if len(items) == 1:
                return [(items[0], str(exc))]
            # Split to find the refused ones; rewriting the accepted points overwrites them with themselves.
            half = len(items) // 2
            return [*await self._write(items[:half]), *await self._write(items[half:])]
        return []

    async def _evaluate_and_commit(self, batches: list[Batch], commit: IngestCommit) -> tuple[IngestCommitResult, int]:
        """Run the rules over ``batches`` from their held states and commit them with ``commit``."""
        wanted = self.engine.metrics
        by_patient: dict[str, list[Sample]] = defaultdict(list)
        for batch in batches:
            for stream in batch.streams:
                if stream.metric in wanted:
                    by_patient[batch.patient].extend(stream.samples())
        lock = await self._lock(by_patient)
        try:
            late_windows = 0
            if by_patient:
                keys = self.engine.keys_for({patient: {s.metric for s in samples}
                                             for patient, samples in by_patient.items()})
                states = await asyncio.to_thread(lock.rule_states, keys)
                table = await self._settings_for(by_patient)
                result = self.engine.evaluate(states, by_patient, table)
                commit.states = dict(result.states)
                spans = merge_spans(result.late)
                commit.changes = [*result.changes, *await self._reevaluate(spans, table)]
                late_windows = len(spans)
            return await asyncio.to_thread(lock.commit, commit), late_windows
        except Exception as exc:
            await asyncio.to_thread(lock.rollback)
            raise classify_store_error(exc) from exc

    async def tick(self, chunk: int = 200) -> list[AlertRecord]:
        """Advance the time-driven rules' states to now, ``chunk`` patients per transaction.

        Each chunk holds its patients like a micro-batch does, so a tick never overwrites a state
        an ingest worker has just written. Returns the alerts it opened.
        """
        ticking = self.engine.ticking
        if not ticking:
            return []  # no rule changes on the clock alone: nothing to read
        try:
            known = await asyncio.to_thread(self.store.all_rule_states, ticking)
            facts = await asyncio.to_thread(self.store.patient_facts, self.now(), self.gateway_silent_s)
        except Exception as exc:
            raise classify_store_error(exc) from exc
        # Patients with a stored state, and those whose gateway the cloud knows (gateway-offline rules).
        patients = sorted({patient for _rule, patient in known} | set(facts))
        opened: list[AlertRecord] = []
        for start in range(0, len(patients), chunk):
            part = patients[start:start + chunk]
            members = set(part)
            keys = [key for key in known if key[1] in members]
            lock = await self._lock(part)
            try:
                states = await asyncio.to_thread(lock.rule_states, keys)
                table = await self._settings_for(part)
                result = self.engine.tick(states, self.clock(), table,
                                          facts={patient: facts[patient] for patient in part if patient in facts})
                commit = IngestCommit(at=self.now(), states=dict(result.states), changes=list(result.changes))
                opened.extend((await asyncio.to_thread(lock.commit, commit)).opened)
            except Exception as exc:
                await asyncio.to_thread(lock.rollback)
                raise classify_store_error(exc) from exc
        return opened

    async def _lock(self, patients: Iterable[str]) -> PatientLock:
        try:
            return await asyncio.to_thread(self.store.lock_patients, list(patients))
        except Exception as exc:
            raise classify_store_error(exc) from exc

    async def _settings_for(self, patients: Iterable[str]) -> Mapping[str, PatientSettings] | None:
        """The patients' settings in force (None: the engine's own), checked against the store's versions."""
        if self.settings is None:
            return None
        return await asyncio.to_thread(self.settings.settings_for, list(patients))

    async def _reevaluate(self, spans: list[LateSpan],
                          settings: Mapping[str, PatientSettings] | None = None) -> list[AlertChange]:
        """Re-run the rules over each late span's window, read back from InfluxDB."""
        if not spans:
            return []
        gate = asyncio.Semaphore(_LATE_READS_AT_ONCE)

        async def reevaluate(span: LateSpan) -> list[AlertChange]:
            start, end = self.engine.window(span)
            history: list[Sample] = []
            async with gate:
                for metric in sorted(self.engine.rule(span.rule).metrics):
                    history.extend(await read_samples(self.influx, span.patient, metric, start, end))
            return self.engine.reevaluate(span, history, settings)

        try:
            return [change for found in await asyncio.gather(*(reevaluate(span) for span in spans))
                    for change in found]
        except InfluxUnavailable as exc:
            raise TransientError(str(exc), "influxdb") from exc

    async def _commit(self, commit: IngestCommit) -> IngestCommitResult:
        try:
            return await asyncio.to_thread(self.store.commit_ingest, commit)
        except Exception as exc:
            raise classify_store_error(exc) from exc


class _Item:
    """An accepted batch, where it stands in the micro-batch, its key and its size (computed once)."""

    __slots__ = ("batch", "index", "key", "samples")

    def __init__(self, index: int, batch: Batch) -> None:
        self.index = index
        self.batch = batch
        self.key = BatchKey(batch.gateway, batch.epoch, batch.seq)
        self.samples = batch.sample_count


def registry_refusal(binding: GatewayBinding | None, gateway: str, patient: str) -> Refused | None:
    """Why the registry refuses a batch of ``gateway`` for ``patient`` (None: it does not)."""
    if binding is None:
        return Refused("gateway", f"gateway {gateway!r} is not registered")
    if binding.revoked:
        return Refused("gateway", f"gateway {gateway!r} is revoked")
    if patient not in binding.patients:
        return Refused("patient", f"patient {patient!r} is not bound to gateway {gateway!r}")
    return None


def _device_seen(batch: Batch) -> DeviceSeen:
    newest = max((int(stream.times_ns[-1]) for stream in batch.streams if len(stream)), default=0)
    return DeviceSeen(batch.gateway, batch.device, batch.patient, dt.datetime.fromtimestamp(newest / 1e9, dt.UTC))


def _topic_gateway(topic: str) -> str | None:
    try:
        return gateway_of(topic)
    except TopicError:
        return None
