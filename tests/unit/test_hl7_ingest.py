"""The ingest's HL7 seam: each stored batch's ORU^R01 is queued in the batch's own transaction, and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hl7
import httpx
import pytest

from cloud.hl7 import BatchForwarder, batch_control_id
from cloud.ingest import InboundMessage, IngestProcessor, Outcome, TransientError
from cloud.rules import RuleEngine
from cloud.store import Hl7OutboxStore, Store
from cloud.timeseries import InfluxV1Client
from vitals.codec import encode_batch
from vitals.samples import Batch, Stream

S = 10**9
NOW = 1_700_000_000 * S


class Influx:
    """An InfluxDB behind httpx.MockTransport answering ``status`` to every write."""

    def __init__(self) -> None:
        self.status = 204

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return httpx.Response(self.status, text="" if self.status == 204 else "unavailable")


@pytest.fixture
def fake() -> Influx:
    return Influx()


@pytest.fixture
async def influx(fake: Influx) -> AsyncIterator[InfluxV1Client]:
    client = InfluxV1Client("http://influx.test:8086/", "vb", transport=httpx.MockTransport(fake.handle))
    try:
        yield client
    finally:
        await client.aclose()


def message(seq: int, values: tuple[float, ...] = (97.0, 96.0)) -> InboundMessage:
    times = [NOW - 10 * S + i * S for i in range(len(values))]
    batch = Batch("gw-1", seq, "pt-1", "ox-1", "generic.plx", (Stream("spo2", "%", times, list(values),
                                                                      [0] * len(values)),), epoch="ep1")
    return InboundMessage("vb/v1/gw-1/data", encode_batch(batch))


def processor(store: Store, influx: InfluxV1Client, forward: bool = True) -> IngestProcessor:
    return IngestProcessor(store, influx, RuleEngine([]), clock=lambda: NOW,
                           outbound=BatchForwarder() if forward else None)


async def test_stored_batches_are_queued_once_each_with_their_batch(store: Store, influx: InfluxV1Client) -> None:
    ingest = processor(store, influx)
    result = await ingest.process([message(1), message(2), message(1)])
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED, Outcome.STORED, Outcome.DUPLICATE]
    assert (await ingest.process([message(2)])).dispositions[0].outcome is Outcome.DUPLICATE
    rows = Hl7OutboxStore(store.engine).rows()
    assert [r.control_id for r in rows] == [batch_control_id("gw-1", "ep1", 1), batch_control_id("gw-1", "ep1", 2)]
    assert {(r.kind, r.patient, r.status) for r in rows} == {("oru_r01", "pt-1", "pending")}
    parsed = hl7.parse(rows[0].body)
    assert [str(o(5)) for o in parsed.segments("OBX")[1:]] == ["97", "96"]
    assert str(parsed.segment("OBR")(3)) == "gw-1.ep1.1^VitalBridge"


async def test_nothing_is_queued_when_the_batch_is_not_stored(store: Store, influx: InfluxV1Client,
                                                              fake: Influx) -> None:
    fake.status = 503
    with pytest.raises(TransientError):
        await processor(store, influx).process([message(1)])
    assert Hl7OutboxStore(store.engine).rows() == [] and store.ingested_batches() == 0


async def test_without_an_endpoint_nothing_is_queued(store: Store, influx: InfluxV1Client) -> None:
    await processor(store, influx, forward=False).process([message(1)])
    assert store.ingested_batches() == 1 and Hl7OutboxStore(store.engine).rows() == []
