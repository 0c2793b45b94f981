"""IngestWorker with a fake MQTT client and a scripted processor: acknowledgements, retries, stalls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cloud.ingest import (
    Disposition,
    InboundMessage,
    IngestMetrics,
    IngestWorker,
    Outcome,
    ProcessResult,
    TransientError,
    WorkerSettings,
)
from cloud.store import BatchKey
from vitals.acks import MAX_ACK_SEQS, decode_ack


class FakeClient:
    """Stands in for MqttIngestClient: records acknowledgements and publishes."""

    def __init__(self) -> None:
        self.client_id = "fake-ingest"
        self.acked: list[InboundMessage] = []
        self.published: list[tuple[str, bytes]] = []
        self.generation = 1
        self.connected = True
        self.last_error = ""
        self.depth = 0
        self.queued = 0

    def is_current(self, generation: int) -> bool:
        return generation == self.generation

    def ack(self, messages: Sequence[tuple[int, InboundMessage]]) -> None:
        self.acked.extend(message for generation, message in messages if generation == self.generation)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.published.append((topic, payload))


class ScriptedProcessor:
    """Fails with the scripted errors first, then stores every message."""

    def __init__(self, failures: list[BaseException], dispositions: list[Disposition] | None = None) -> None:
        self.failures = failures
        self.dispositions = dispositions
        self.calls = 0

    async def process(self, messages: Sequence[InboundMessage]) -> ProcessResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        if self.dispositions is not None:
            return ProcessResult(list(self.dispositions))
        return ProcessResult([Disposition(Outcome.STORED, "gw-1", BatchKey("gw-1", "e", n), 1)
                              for n, _ in enumerate(messages)])


def _worker(processor: Any, client: FakeClient, clock: list[float], **settings: Any) -> IngestWorker:
    base = {"retry_initial_s": 0.001, "retry_max_s": 0.002, "stall_s": 10.0}
    return IngestWorker(client, processor, IngestMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                        WorkerSettings(**(base | settings)), monotonic=lambda: clock[0])


def _messages(count: int, generation: int = 1) -> list[tuple[int, InboundMessage]]:
    return [(generation, InboundMessage("vb/v1/gw-1/data", b"x", mid=n + 1)) for n in range(count)]


async def test_acknowledges_only_after_a_transient_error_has_passed() -> None:
    client = FakeClient()
    errors: list[BaseException] = [TransientError("InfluxDB down", "influxdb"), TransientError("locked", "database")]
    processor = ScriptedProcessor(errors)
    worker = _worker(processor, client, [0.0])
    await worker._handle(_messages(3))
    assert processor.calls == 3
    assert [m.mid for m in client.acked] == [1, 2, 3]
    assert worker.stats.transient_errors == 2 and worker.stats.stored_batches == 3
    assert worker.last_error == ""


async def test_a_micro_batch_held_past_the_stall_time_is_a_stall() -> None:
    client = FakeClient()
    clock = [0.0]
    held = asyncio.Event()

    class Stuck(ScriptedProcessor):
        async def process(self, messages: Sequence[InboundMessage]) -> ProcessResult:
            clock[0] += 6.0  # each try takes 6 s of the worker's clock
            if self.calls == 2:
                held.set()
            return await super().process(messages)

    worker = _worker(Stuck([TransientError("InfluxDB down", "influxdb")] * 3), client, clock, stall_s=10.0)
    task = asyncio.create_task(worker._handle(_messages(1)))
    await held.wait()
    assert worker.stalled and worker.health()["stalled"] is True
    assert "vb_ingest_stalled 1.0" in _metrics(worker)
    await task
    assert not worker.stalled and len(client.acked) == 1
    assert "vb_ingest_stalled 0.0" in _metrics(worker)


def _metrics(worker: IngestWorker) -> str:
    from prometheus_client import generate_latest

    return generate_latest(worker.metrics.registry).decode()


async def test_messages_of_an_older_connection_are_never_acknowledged() -> None:
    client = FakeClient()
    processor = ScriptedProcessor([TransientError("down", "influxdb")])
    worker = _worker(processor, client, [0.0])

    client.generation = 2  # the session was lost and made again since these were received
    await worker._handle(_messages(2, generation=1))
    assert client.acked == [] and processor.calls == 0  # the broker redelivers them on the new session


async def test_gateways_are_told_what_is_stored_and_what_is_refused_for_good() -> None:
    dispositions = [
        Disposition(Outcome.STORED, "gw-1", BatchKey("gw-1", "e1", 5), 10),
        Disposition(Outcome.DUPLICATE, "gw-1", BatchKey("gw-1", "e1", 4), 10),
        Disposition(Outcome.REFUSED, "gw-1", BatchKey("gw-1", "e1", 6), 0, "implausible", "x"),
        Disposition(Outcome.STORED, "gw-2", BatchKey("gw-2", "", 1), 3),
        Disposition(Outcome.REFUSED, None, None, 0, "topic", "x"),
        Disposition(Outcome.REFUSED, "gw-3", BatchKey("gw-9", "e", 1), 0, "gateway", "x"),  # not its own batch
    ]
    client = FakeClient()
    worker = _worker(ScriptedProcessor([], dispositions), client, [0.0])
    await worker._handle(_messages(len(dispositions)))
    acks = {topic: decode_ack(payload) for topic, payload in client.published}
    assert set(acks) == {"vb/v1/gw-1/cmd/ack", "vb/v1/gw-2/cmd/ack"}
    gw1 = acks["vb/v1/gw-1/cmd/ack"]
    assert (gw1.epoch, gw1.stored, gw1.refused) == ("e1", (4, 5), (6,))
    assert acks["vb/v1/gw-2/cmd/ack"].stored == (1,)
    assert dict(worker.stats.rejected_by_reason) == {"implausible": 1, "topic": 1, "gateway": 1}


@pytest.mark.parametrize("count", [MAX_ACK_SEQS, MAX_ACK_SEQS + 1])
async def test_a_gateway_with_more_batches_than_one_acknowledgement_names_gets_several(count: int) -> None:
    dispositions = [Disposition(Outcome.STORED, "gw-1", BatchKey("gw-1", "e", n), 1) for n in range(count)]
    client = FakeClient()
    worker = _worker(ScriptedProcessor([], dispositions), client, [0.0])
    worker._acknowledge_gateways(dispositions)
    named = [seq for _, payload in client.published for seq in decode_ack(payload).stored]
    assert sorted(named) == list(range(count))
    assert len(client.published) == (1 if count == MAX_ACK_SEQS else 2)


class _SilenceRule:
    """A test rule that fires when a patient has sent nothing for 10 minutes (the clock alone moves it)."""

    name = "silent"
    metrics = frozenset({"spo2"})
    context_ns = 0
    ticks = True

    def evaluate(self, state: Any, patient: str, samples: Sequence[Any]) -> tuple[dict[str, Any], list[Any]]:
        return {"last": samples[-1].time_ns, "fired": False}, []

    def tick(self, state: Any, patient: str, now_ns: int) -> tuple[dict[str, Any], list[Any]]:
        from cloud.rules import AlertChange

        state = dict(state or {})
        if state.get("fired") or now_ns - state.get("last", now_ns) < 600 * 10**9:
            return state, []
        state["fired"] = True
        return state, [AlertChange(self.name, patient, "spo2", "warning", state["last"], now_ns, now_ns, 0.0, 0.0,
                                   "no SpO2 for 10 min", "open")]


async def test_the_clock_tick_advances_stored_states_and_opens_alerts_once(database_url: str) -> None:
    import httpx

    from cloud.ingest import IngestProcessor
    from cloud.rules import RuleEngine, SustainedThresholdRule
    from cloud.store import IngestCommit, open_store
    from cloud.timeseries import InfluxV1Client

    now = [1_700_000_000 * 10**9]
    store = open_store(database_url)
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    engine = RuleEngine([_SilenceRule(), SustainedThresholdRule("low", "spo2", "below", 90.0, 60.0)])
    assert engine.ticking == frozenset({"silent"})
    worker = _worker(IngestProcessor(store, influx, engine, clock=lambda: now[0]), FakeClient(), [0.0])
    state = {"watermark": now[0], "rule": {"last": now[0], "fired": False}}
    store.commit_ingest(IngestCommit(at=worker.processor.now(), states={("silent", "p1"): state}))
    assert await worker.tick() == 0
    now[0] += 601 * 10**9
    assert await worker.tick() == 1
    assert await worker.tick() == 0  # the state says it fired: once per silence
    [alert] = store.alerts()
    assert (alert.rule, alert.patient, alert.message) == ("silent", "p1", "no SpO2 for 10 min")
    await influx.aclose()
    store.close()
