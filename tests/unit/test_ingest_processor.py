"""IngestProcessor with a real store on a temp SQLite file and a fake InfluxDB behind httpx.MockTransport."""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import AsyncIterator, Sequence

import cbor2
import httpx
import pytest

from cloud.ingest import IngestProcessor, Outcome
from cloud.rules import build_rules
from cloud.store import Store
from cloud.timeseries import InfluxError, InfluxV1Client, _client
from vitals.codec import MAX_PAYLOAD_BYTES, encode_batch
from vitals.samples import Batch, Stream

S = 10**9
NOW = 1_700_000_000 * S
TOPIC = "vb/v1/gw-1/data"


class FakeInflux:
    """An InfluxDB /write endpoint that records bodies and answers with a chosen status."""

    def __init__(self) -> None:
        self.status = 204
        self.writes: list[str] = []
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        assert request.url.path == "/write"
        assert request.url.params["db"] == "vb" and request.url.params["precision"] == "ns"
        if self.status != 204:
            return httpx.Response(self.status, text="engine on fire")
        self.writes.append(request.content.decode())
        return httpx.Response(204)


@pytest.fixture
def fake() -> FakeInflux:
    return FakeInflux()


@pytest.fixture
async def influx(fake: FakeInflux, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[InfluxV1Client]:
    async def no_sleep(_seconds: float) -> None:
        return None

    # Retries back off with asyncio.sleep; the tests need not wait for it.
    monkeypatch.setattr(_client, "asyncio", types.SimpleNamespace(sleep=no_sleep))
    client = InfluxV1Client("http://influx.test:8086/", "vb", transport=httpx.MockTransport(fake.handle))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def alerts() -> list[Sequence[object]]:
    return []


@pytest.fixture
def processor(store: Store, influx: InfluxV1Client, alerts: list[Sequence[object]]) -> IngestProcessor:
    return IngestProcessor(store, influx, build_rules(), clock=lambda: NOW, on_alert=alerts.append)


def _batch(seq: int = 1, values: Sequence[float] = (97.0, 96.0), *, gateway: str = "gw-1",
           start_ns: int = NOW - 10 * S, step_ns: int = S) -> Batch:
    times = [start_ns + i * step_ns for i in range(len(values))]
    return Batch(gateway, seq, "pt-1", "ox-1", "generic.plx",
                 (Stream("spo2", "%", times, list(values), [0] * len(values)),))


async def test_valid_batch_is_written_logged_and_counted(processor: IngestProcessor, fake: FakeInflux,
                                                         store: Store) -> None:
    outcome = await processor.handle(TOPIC, encode_batch(_batch(values=(97.0, 96.5))))
    assert outcome is Outcome.STORED
    t = NOW - 10 * S
    assert fake.writes == [
        f"vitals,device=ox-1,metric=spo2,patient=pt-1 value=97.0,quality=0i {t}\n"
        f"vitals,device=ox-1,metric=spo2,patient=pt-1 value=96.5,quality=0i {t + S}"
    ]
    assert store.seen_batch("gw-1", 1)
    assert (processor.stats.stored_batches, processor.stats.stored_samples, processor.stats.rejected) == (1, 2, 0)


async def test_duplicate_is_not_written_twice(processor: IngestProcessor, fake: FakeInflux) -> None:
    payload = encode_batch(_batch())
    assert await processor.handle(TOPIC, payload) is Outcome.STORED
    assert await processor.handle(TOPIC, payload) is Outcome.DUPLICATE
    assert len(fake.writes) == 1
    assert (processor.stats.stored_batches, processor.stats.duplicates) == (1, 1)


def _wrong_version() -> bytes:
    raw = cbor2.loads(encode_batch(_batch()))
    raw["v"] = 99
    return cbor2.dumps(raw)


@pytest.mark.parametrize(
    ("topic", "payload", "category", "detail"),
    [
        (TOPIC, b"\xde\xad\xbe\xef garbage", "decode", "not valid CBOR"),
        (TOPIC, encode_batch(_batch())[:-5], "decode", "not valid CBOR"),
        (TOPIC, _wrong_version(), "decode", "unsupported wire version 99"),
        (TOPIC, b"\xa0" * (MAX_PAYLOAD_BYTES + 1), "decode", "byte limit"),
        (TOPIC, b"", "decode", "empty payload"),
        (TOPIC, encode_batch(_batch(values=(97.0, 250.0))), "implausible", "outside the plausible range"),
        (TOPIC, encode_batch(_batch(start_ns=NOW + 3600 * S)), "implausible", "timestamps lie in the future"),
        ("vb/v1/gw-2/data", encode_batch(_batch()), "gateway",
         "batch names gateway 'gw-1' but came on the topic of 'gw-2'"),
        ("elsewhere/data", encode_batch(_batch()), "topic", "is not under vb/v1/"),
    ],
    ids=["garbage", "truncated", "wrong-version", "oversized", "empty", "impossible-value", "future",
         "gateway-mismatch", "foreign-topic"],
)
async def test_bad_messages_are_dead_lettered_with_a_reason_and_counted(
    processor: IngestProcessor, fake: FakeInflux, store: Store,
    topic: str, payload: bytes, category: str, detail: str,
) -> None:
    assert await processor.handle(topic, payload) is Outcome.REJECTED
    assert fake.requests == 0
    [letter] = store.dead_letters()
    assert letter.reason.startswith(f"{category}: ")
    assert detail in letter.reason
    assert (letter.topic, letter.payload, letter.size) == (topic, payload, len(payload))
    assert processor.stats.rejected == 1
    assert dict(processor.stats.rejected_by_reason) == {category: 1}
    assert not store.seen_batch("gw-1", 1)


async def test_bad_messages_do_not_stop_valid_traffic(processor: IngestProcessor, store: Store) -> None:
    outcomes = [
        await processor.handle(TOPIC, b"junk"),
        await processor.handle(TOPIC, encode_batch(_batch(seq=1))),
        await processor.handle(TOPIC, _wrong_version()),
        await processor.handle(TOPIC, encode_batch(_batch(seq=2))),
    ]
    assert outcomes == [Outcome.REJECTED, Outcome.STORED, Outcome.REJECTED, Outcome.STORED]
    assert dict(processor.stats.rejected_by_reason) == {"decode": 2}
    assert store.dead_letter_count() == 2
    assert store.ingested_samples() == 4


async def test_influx_outage_raises_and_leaves_the_batch_unrecorded(
    processor: IngestProcessor, fake: FakeInflux, store: Store
) -> None:
    fake.status = 503
    payload = encode_batch(_batch())
    with pytest.raises(InfluxError, match=r"InfluxDB write failed \(503\): engine on fire"):
        await processor.handle(TOPIC, payload)
    assert fake.requests == 4  # the first try and three retries
    assert not store.seen_batch("gw-1", 1)
    assert processor.stats.stored_batches == 0 and store.dead_letter_count() == 0
    # When InfluxDB is back, the redelivered message is stored, not taken for a duplicate.
    fake.status = 204
    assert await processor.handle(TOPIC, payload) is Outcome.STORED
    assert store.seen_batch("gw-1", 1) and len(fake.writes) == 1


async def test_influx_client_error_is_not_retried(processor: IngestProcessor, fake: FakeInflux,
                                                  store: Store) -> None:
    fake.status = 400
    with pytest.raises(InfluxError, match=r"\(400\)"):
        await processor.handle(TOPIC, encode_batch(_batch()))
    assert fake.requests == 1
    assert not store.seen_batch("gw-1", 1)


async def test_unreachable_influx_raises_influx_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(_seconds: float) -> None:
        return None

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(_client, "asyncio", types.SimpleNamespace(sleep=no_sleep))
    async with InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(refuse)) as influx:
        processor = IngestProcessor(store, influx, [], clock=lambda: NOW)
        with pytest.raises(InfluxError, match="cannot reach InfluxDB"):
            await processor.handle(TOPIC, encode_batch(_batch()))
    assert not store.seen_batch("gw-1", 1)


async def test_hypoxic_patient_gets_one_alert_and_replays_add_none(
    processor: IngestProcessor, store: Store, alerts: list[Sequence[object]]
) -> None:
    start = NOW - 200 * S
    first = _batch(seq=1, values=[85.0] * 61, start_ns=start)
    second = _batch(seq=2, values=[84.0] * 30, start_ns=start + 61 * S)
    assert await processor.handle(TOPIC, encode_batch(first)) is Outcome.STORED
    assert await processor.handle(TOPIC, encode_batch(second)) is Outcome.STORED
    assert await processor.handle(TOPIC, encode_batch(first)) is Outcome.DUPLICATE
    [alert] = store.alerts()
    assert (alert.rule, alert.patient, alert.state, alert.episode_start_ns, alert.worst_value) == (
        "spo2_low_sustained", "pt-1", "open", start, 84.0)
    assert processor.stats.alerts_opened == 1
    assert len(alerts) == 1


async def test_stable_patient_gets_no_alert(processor: IngestProcessor, store: Store) -> None:
    await processor.handle(TOPIC, encode_batch(_batch(values=[97.0] * 120, start_ns=NOW - 200 * S)))
    assert store.alerts() == []


async def test_processor_clock_is_utc(processor: IngestProcessor) -> None:
    assert processor.now() == dt.datetime.fromtimestamp(NOW / 1e9, dt.UTC)
