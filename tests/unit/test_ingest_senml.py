"""SenML packs through the ingest: the same checks, registry, dedup and dead letters as native batches.

A real store on a temp SQLite file; a fake InfluxDB behind httpx.MockTransport (as in the processor tests).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from cloud.ingest import Disposition, InboundMessage, IngestMetrics, IngestProcessor, IngestWorker, Outcome
from cloud.registry import GatewayBinding
from cloud.rules import RuleEngine
from cloud.store import BatchKey, IngestCommit, LoggedBatch, Retention, Store
from cloud.timeseries import InfluxV1Client
from tests.unit.test_ingest_processor import FakeInflux
from tests.unit.test_ingest_worker import FakeClient
from vitals.senml import CBOR_CONTENT_TYPE, decode_senml, encode_senml_cbor, encode_senml_json
from vitals.topics import senml_topic

S = 10**9
NOW = 1_700_000_000 * S
TOPIC = senml_topic("gw-3rd")
PACK: list[dict[str, Any]] = [
    {"bn": "pt-1:ox-9:", "bt": NOW // S - 20, "n": "spo2", "u": "/", "v": 0.97},
    {"n": "pulse_rate", "u": "beat/min", "v": 64}, {"n": "spo2", "u": "/", "t": 10, "v": 0.96},
]


@pytest.fixture
def fake() -> FakeInflux:
    return FakeInflux()


@pytest.fixture
async def influx(fake: FakeInflux) -> AsyncIterator[InfluxV1Client]:
    client = InfluxV1Client("http://influx.test:8086/", "vb", transport=httpx.MockTransport(fake.handle))
    try:
        yield client
    finally:
        await client.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def processor(store: Store, influx: InfluxV1Client, clock: Clock) -> IngestProcessor:
    return IngestProcessor(store, influx, RuleEngine([]), clock=clock)


def _epoch(payload: bytes) -> str:
    return decode_senml(payload, gateway="gw-3rd", now_ns=NOW).epoch


async def test_a_senml_pack_is_stored_in_catalogue_units(processor: IngestProcessor, fake: FakeInflux,
                                                         store: Store) -> None:
    payload = encode_senml_json(PACK)
    result = await processor.process([InboundMessage(TOPIC, payload)])
    [disposition] = result.dispositions
    key = BatchKey("gw-3rd", _epoch(payload), 0)
    assert (disposition.outcome, disposition.gateway, disposition.key, disposition.samples) == (
        Outcome.STORED, "gw-3rd", key, 3)
    t = NOW - 20 * S
    assert sorted(fake.lines) == sorted([
        f"vitals,device=ox-9,metric=spo2,patient=pt-1 value=97.0,quality=0i {t}",
        f"vitals,device=ox-9,metric=spo2,patient=pt-1 value=96.0,quality=0i {t + 10 * S}",
        f"vitals,device=ox-9,metric=pulse_rate,patient=pt-1 value=64.0,quality=0i {t}",
    ])
    assert store.seen([key]) == {key}
    [device] = store.device_health("gw-3rd")
    assert (device.device, device.patient) == ("ox-9", "pt-1")


async def test_a_redelivered_pack_is_stored_once_in_either_form(processor: IngestProcessor, fake: FakeInflux,
                                                                clock: Clock) -> None:
    as_json, as_cbor = encode_senml_json(PACK), encode_senml_cbor(PACK)
    result = await processor.process([InboundMessage(TOPIC, as_json), InboundMessage(TOPIC, as_json)])
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED, Outcome.DUPLICATE]
    clock.now += 60 * S
    result = await processor.process([InboundMessage(TOPIC, as_json),
                                      InboundMessage(TOPIC, as_cbor, content_type=CBOR_CONTENT_TYPE)])
    assert [d.outcome for d in result.dispositions] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert len(fake.lines) == 3


async def test_a_relative_pack_redelivered_later_is_not_counted_again(processor: IngestProcessor,
                                                                      fake: FakeInflux, clock: Clock) -> None:
    payload = encode_senml_json([{"n": "pt-1:ox-9:spo2", "t": -5, "v": 97}])
    assert [d.outcome for d in (await processor.process([InboundMessage(TOPIC, payload)])).dispositions] == [
        Outcome.STORED]
    clock.now += 40 * S  # its time now resolves 40 s later: only the key tells it is the same pack
    assert [d.outcome for d in (await processor.process([InboundMessage(TOPIC, payload)])).dispositions] == [
        Outcome.DUPLICATE]
    assert fake.lines == [f"vitals,device=ox-9,metric=spo2,patient=pt-1 value=97.0,quality=0i {NOW - 5 * S}"]


@pytest.mark.parametrize(
    ("payload", "content_type", "category", "detail", "keyed"),
    [
        (b'[{"n":"pt-1:ox-9:spo2","u":"%EL","v":97}]', "", "decode",
         "SenML: record 0: unit '%EL' cannot be taken for spo2", False),
        (b"[{]", "", "decode", "SenML: not valid SenML JSON", False),
        (encode_senml_json(PACK), CBOR_CONTENT_TYPE, "decode", "SenML: not valid SenML CBOR", False),
        (b'[{"n":"pt-1:ox-9:spo2","v":97,"crit_":true}]', "", "decode",
         "SenML: record 0: label 'crit_' must be understood", False),
        (b'[{"n":"pt-1:ox-9:spo2","v":1.3,"u":"/"}]', "", "implausible", "outside the plausible range", True),
        (b'[{"n":"pt-1:ox-9:spo2","v":97,"t":3600}]', "", "implausible", "timestamps lie in the future", True),
    ],
    ids=["unit", "json", "content-type", "must-understand", "implausible", "future"],
)
async def test_malformed_senml_is_dead_lettered_with_the_reason(
    processor: IngestProcessor, fake: FakeInflux, store: Store,
    payload: bytes, content_type: str, category: str, detail: str, keyed: bool,
) -> None:
    result = await processor.process([InboundMessage(TOPIC, payload, content_type=content_type)])
    [disposition] = result.dispositions
    assert (disposition.outcome, disposition.category, disposition.gateway) == (Outcome.REFUSED, category, "gw-3rd")
    assert detail in disposition.reason
    assert (disposition.key is not None) == keyed
    [letter] = store.dead_letters()
    assert letter.reason.startswith(f"{category}: ") and detail in letter.reason
    assert (letter.topic, letter.payload) == (TOPIC, payload)
    assert fake.requests == 0 and store.ingested_batches() == 0


async def test_the_registry_check_applies_to_senml(store: Store, influx: InfluxV1Client, fake: FakeInflux) -> None:
    def lookup(gateways: Iterable[str]) -> Mapping[str, GatewayBinding | None]:
        return {gateway: GatewayBinding(False, frozenset({"pt-2"})) if gateway == "gw-3rd" else None
                for gateway in gateways}

    processor = IngestProcessor(store, influx, RuleEngine([]), clock=lambda: NOW, bindings=lookup)
    result = await processor.process([
        InboundMessage(TOPIC, encode_senml_json(PACK)),
        InboundMessage(TOPIC, encode_senml_json([{"n": "pt-2:ox-9:spo2", "t": -1, "v": 97}])),
        InboundMessage(senml_topic("gw-unknown"), encode_senml_json(PACK)),
    ])
    assert [(d.outcome, d.category) for d in result.dispositions] == [
        (Outcome.REFUSED, "patient"), (Outcome.STORED, ""), (Outcome.REFUSED, "gateway")]
    assert "patient 'pt-1' is not bound to gateway 'gw-3rd'" in result.dispositions[0].reason
    assert len(fake.lines) == 1 and store.dead_letter_count() == 2


def test_senml_epochs_are_pruned_past_the_dedup_horizon(store: Store) -> None:
    at = dt.datetime.fromtimestamp(NOW / S, dt.UTC)
    keys = [BatchKey("gw-3rd", "senml-" + "0" * 32, 0), BatchKey("gw-1", "ab12cd34ef56ab78", 5)]
    store.commit_ingest(IngestCommit(at=at, batches=[LoggedBatch(key, "pt-1", 1) for key in keys]))
    assert store.seen(keys) == set(keys)
    store.prune(at + dt.timedelta(days=1))
    assert [e.epoch for e in store.gateway_epochs("gw-3rd")] == ["senml-" + "0" * 32]
    store.prune(at + Retention().ingest_log + dt.timedelta(days=1))
    assert store.gateway_epochs("gw-3rd") == []  # one row per pack: not kept for ever
    assert [e.epoch for e in store.gateway_epochs("gw-1")] == ["ab12cd34ef56ab78"]  # a spool's epoch stays


async def test_a_senml_gateway_gets_no_spool_acknowledgements() -> None:
    client = FakeClient()
    worker = IngestWorker(client, None, IngestMetrics(CollectorRegistry()))  # type: ignore[arg-type]
    worker._acknowledge_gateways([
        Disposition(Outcome.STORED, "gw-3rd", BatchKey("gw-3rd", "senml-" + "1" * 32, 0), 3),
        Disposition(Outcome.REFUSED, "gw-3rd", BatchKey("gw-3rd", "senml-" + "2" * 32, 0), 0, "implausible", "x"),
        Disposition(Outcome.STORED, "gw-1", BatchKey("gw-1", "e1", 7), 3),
    ])
    assert [topic for topic, _ in client.published] == ["vb/v1/gw-1/cmd/ack"]  # it keeps no spool to prune


@pytest.mark.parametrize("payload", [encode_senml_json(PACK), encode_senml_cbor(PACK)])
async def test_senml_on_the_data_topic_is_refused_with_a_pointer_to_its_topic(processor: IngestProcessor,
                                                                              payload: bytes) -> None:
    result = await processor.process([InboundMessage("vb/v1/gw-3rd/data", payload)])
    [disposition] = result.dispositions
    assert (disposition.outcome, disposition.category) == (Outcome.REFUSED, "decode")
    assert disposition.reason.endswith("(SenML packs go on vb/v1/gw-3rd/senml)")
