"""IngestProcessor with a real store on a temp SQLite file and a fake InfluxDB behind httpx.MockTransport."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Sequence

import cbor2
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DataError, OperationalError

from cloud.ingest import InboundMessage, IngestLimits, IngestProcessor, Outcome, TransientError, triage
from cloud.ingest import Refused as RefusedVerdict
from cloud.rules import RuleEngine, build_rules, default_rule_config
from cloud.store import BatchKey, IngestCommit, PatientLock, Store
from cloud.timeseries import InfluxV1Client
from vitals.codec import MAX_PAYLOAD_BYTES, encode_batch
from vitals.samples import Batch, Stream

S = 10**9
NOW = 1_700_000_000 * S
TOPIC = "vb/v1/gw-1/data"


class FakeInflux:
    """An InfluxDB that records written lines, answers a chosen status, and refuses lines holding a marker."""

    def __init__(self) -> None:
        self.status = 204
        self.refuse_marker: str | None = None
        self.writes: list[str] = []
        self.requests = 0
        self.queries: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if request.url.path == "/query":
            self.queries.append(request.url.params["q"])
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        assert request.url.path == "/write"
        assert request.url.params["db"] == "vb" and request.url.params["precision"] == "ns"
        if self.status != 204:
            return httpx.Response(self.status, text="engine on fire")
        body = request.content.decode()
        if self.refuse_marker is not None and self.refuse_marker in body:
            # InfluxDB writes the good points of a request and refuses the rest with 400.
            good = [line for line in body.split("\n") if self.refuse_marker not in line]
            if good:
                self.writes.append("\n".join(good))
            return httpx.Response(400, json={"error": "partial write: points beyond retention policy dropped=1"})
        self.writes.append(body)
        return httpx.Response(204)

    @property
    def lines(self) -> list[str]:
        return [line for body in self.writes for line in body.split("\n")]


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


# These tests were written for the first default rule: keep judging with it alone.
_SPO2_RULE = [entry for entry in default_rule_config() if entry["name"] == "spo2_low_sustained"]


@pytest.fixture
def processor(store: Store, influx: InfluxV1Client) -> IngestProcessor:
    return IngestProcessor(store, influx, RuleEngine(build_rules(_SPO2_RULE)), clock=lambda: NOW)


def _batch(seq: int = 1, values: Sequence[float] = (97.0, 96.0), *, gateway: str = "gw-1", epoch: str = "ep1",
           start_ns: int = NOW - 10 * S, step_ns: int = S, patient: str = "pt-1") -> Batch:
    times = [start_ns + i * step_ns for i in range(len(values))]
    return Batch(gateway, seq, patient, "ox-1", "generic.plx",
                 (Stream("spo2", "%", times, list(values), [0] * len(values)),), epoch=epoch)


def _message(payload: bytes | Batch, topic: str = TOPIC) -> InboundMessage:
    return InboundMessage(topic, encode_batch(payload) if isinstance(payload, Batch) else payload)


async def _one(processor: IngestProcessor, payload: bytes | Batch, topic: str = TOPIC) -> Outcome:
    result = await processor.process([_message(payload, topic)])
    [disposition] = result.dispositions
    return disposition.outcome


async def test_valid_batch_is_written_logged_and_named(processor: IngestProcessor, fake: FakeInflux,
                                                       store: Store) -> None:
    result = await processor.process([_message(_batch(values=(97.0, 96.5)))])
    [disposition] = result.dispositions
    assert (disposition.outcome, disposition.gateway, disposition.key, disposition.samples) == (
        Outcome.STORED, "gw-1", BatchKey("gw-1", "ep1", 1), 2)
    t = NOW - 10 * S
    assert fake.writes == [
        f"vitals,device=ox-1,metric=spo2,patient=pt-1 value=97.0,quality=0i {t}\n"
        f"vitals,device=ox-1,metric=spo2,patient=pt-1 value=96.5,quality=0i {t + S}"
    ]
    assert store.seen([BatchKey("gw-1", "ep1", 1)])


async def test_a_micro_batch_is_one_write_and_one_transaction(processor: IngestProcessor, fake: FakeInflux,
                                                              store: Store) -> None:
    result = await processor.process([_message(_batch(seq=n)) for n in range(50)])
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED] * 50
    assert fake.requests == 1 and len(fake.lines) == 100
    assert store.ingested_batches() == 50


async def test_duplicates_are_not_written_twice_within_or_across_micro_batches(
    processor: IngestProcessor, fake: FakeInflux
) -> None:
    payload = _batch()
    result = await processor.process([_message(payload), _message(payload)])
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED, Outcome.DUPLICATE]
    assert await _one(processor, payload) is Outcome.DUPLICATE
    assert len(fake.lines) == 2


async def test_a_recreated_spool_starts_again_at_zero_and_is_stored(processor: IngestProcessor,
                                                                    store: Store) -> None:
    assert await _one(processor, _batch(seq=0, epoch="old")) is Outcome.STORED
    assert await _one(processor, _batch(seq=0, epoch="new", start_ns=NOW - 5 * S)) is Outcome.STORED
    assert store.ingested_samples() == 4


async def test_a_sequence_going_backwards_is_reported_and_stored(processor: IngestProcessor) -> None:
    await processor.process([_message(_batch(seq=9))])
    result = await processor.process([_message(_batch(seq=4, start_ns=NOW - 8 * S))])
    assert result.dispositions[0].outcome is Outcome.STORED
    assert result.backwards == [(BatchKey("gw-1", "ep1", 4), 9)]


def _wrong_version() -> bytes:
    raw = cbor2.loads(encode_batch(_batch()))
    raw["v"] = 99
    return cbor2.dumps(raw)


def _amplifying() -> bytes:
    # 30 ECG streams of 262,144 constant values: about 1 MiB that would become 7.9 M points.
    stream = Stream.regular("ecg", "mV", NOW - 3600 * S, 250.0, np.zeros(262_144), scale=0.001)
    return encode_batch(Batch("gw-1", 7, "pt-1", "ecg-1", "generic.ecg", (stream,) * 30, epoch="ep1"))


def _too_dense() -> bytes:
    stream = Stream.regular("spo2", "%", NOW - 10 * S, 1000.0, np.full(500, 97.0))
    return encode_batch(Batch("gw-1", 8, "pt-1", "ox-1", "generic.plx", (stream,), epoch="ep1"))


@pytest.mark.parametrize(
    ("topic", "payload", "category", "detail", "key"),
    [
        (TOPIC, b"\xde\xad\xbe\xef garbage", "decode", "not valid CBOR", None),
        (TOPIC, encode_batch(_batch())[:-5], "decode", "not valid CBOR", None),
        (TOPIC, _wrong_version(), "decode", "unsupported wire version 99", ("gw-1", "ep1", 1)),
        (TOPIC, b"\xa0" * (MAX_PAYLOAD_BYTES + 1), "decode", "byte limit", None),
        (TOPIC, b"", "decode", "empty payload", None),
        (TOPIC, encode_batch(_batch(values=(97.0, 250.0))), "implausible", "outside the plausible range",
         ("gw-1", "ep1", 1)),
        (TOPIC, encode_batch(_batch(start_ns=NOW + 3600 * S)), "implausible", "timestamps lie in the future",
         ("gw-1", "ep1", 1)),
        ("vb/v1/gw-2/data", encode_batch(_batch()), "gateway",
         "batch names gateway 'gw-1' but came on the topic of 'gw-2'", None),
        ("elsewhere/data", encode_batch(_batch()), "topic", "is not under vb/v1/", None),
        (TOPIC, _amplifying(), "amplifying", "more values than the 50000 allowed per batch", ("gw-1", "ep1", 7)),
        (TOPIC, _too_dense(), "amplifying", "over the 10/s any spo2 device reports", ("gw-1", "ep1", 8)),
    ],
    ids=["garbage", "truncated", "wrong-version", "oversized", "empty", "impossible-value", "future",
         "gateway-mismatch", "foreign-topic", "amplifying-1MiB", "denser-than-any-device"],
)
async def test_bad_messages_are_dead_lettered_with_a_reason(
    processor: IngestProcessor, fake: FakeInflux, store: Store,
    topic: str, payload: bytes, category: str, detail: str, key: tuple[str, str, int] | None,
) -> None:
    result = await processor.process([InboundMessage(topic, payload)])
    [disposition] = result.dispositions
    assert (disposition.outcome, disposition.category) == (Outcome.REFUSED, category)
    assert detail in disposition.reason
    assert disposition.key == (BatchKey(*key) if key else None)
    assert fake.requests == 0
    [letter] = store.dead_letters()
    assert letter.reason.startswith(f"{category}: ") and detail in letter.reason
    assert (letter.topic, letter.payload, letter.size) == (topic, payload, len(payload))
    assert store.ingested_batches() == 0


async def test_bad_messages_do_not_stop_valid_traffic(processor: IngestProcessor, store: Store) -> None:
    result = await processor.process([_message(b"junk"), _message(_batch(seq=1)), _message(_wrong_version()),
                                      _message(_batch(seq=2))])
    assert [d.outcome for d in result.dispositions] == [Outcome.REFUSED, Outcome.STORED, Outcome.REFUSED,
                                                        Outcome.STORED]
    assert store.dead_letter_count() == 2
    assert store.ingested_samples() == 4


async def test_influx_outage_is_transient_and_records_nothing(processor: IngestProcessor, fake: FakeInflux,
                                                              store: Store) -> None:
    fake.status = 503
    messages = [_message(_batch(seq=1)), _message(b"junk")]
    with pytest.raises(TransientError, match=r"InfluxDB write failed \(503\): engine on fire") as caught:
        await processor.process(messages)
    assert caught.value.store == "influxdb"
    assert fake.requests == 1  # the worker retries, with backoff; the processor does not
    assert store.ingested_batches() == 0 and store.dead_letter_count() == 0  # not even the junk
    # When InfluxDB is back, the redelivered message is stored, not taken for a duplicate.
    fake.status = 204
    result = await processor.process(messages)
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED, Outcome.REFUSED]


async def test_unreachable_influx_is_transient(store: Store) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("", request=request)

    async with InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(refuse)) as influx:
        processor = IngestProcessor(store, influx, RuleEngine([]), clock=lambda: NOW)
        with pytest.raises(TransientError, match=r"cannot reach InfluxDB at http://influx\.test: ConnectError"):
            await processor.process([_message(_batch())])
    assert store.ingested_batches() == 0


async def test_a_batch_influx_refuses_is_dead_lettered_alone_and_the_rest_stored(
    processor: IngestProcessor, fake: FakeInflux, store: Store
) -> None:
    fake.refuse_marker = "patient=pt-old"
    batches = [_batch(seq=n, patient="pt-old" if n == 13 else "pt-1", start_ns=NOW - (20 + n) * S)
               for n in range(20)]
    result = await processor.process([_message(b) for b in batches])
    outcomes = [d.outcome for d in result.dispositions]
    assert outcomes == [Outcome.REFUSED if n == 13 else Outcome.STORED for n in range(20)]
    assert result.dispositions[13].category == "timeseries"
    assert "points beyond retention policy" in result.dispositions[13].reason
    assert result.dispositions[13].key == BatchKey("gw-1", "ep1", 13)
    assert {line for line in fake.lines if "pt-old" in line} == set()
    assert len(set(fake.lines)) == 38  # every other point, each written at least once
    [letter] = store.dead_letters()
    assert letter.reason.startswith("timeseries: InfluxDB write failed (400)")
    assert store.ingested_batches() == 19


async def test_a_database_outage_is_transient_and_nothing_is_recorded(
    processor: IngestProcessor, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*_args: object, **_kwargs: object) -> object:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(PatientLock, "commit", locked)
    with pytest.raises(TransientError, match="database unavailable: database is locked") as caught:
        await processor.process([_message(_batch())])
    assert caught.value.store == "database"
    monkeypatch.undo()
    assert store.ingested_batches() == 0
    assert (await processor.process([_message(_batch())])).dispositions[0].outcome is Outcome.STORED


async def test_a_value_the_database_refuses_dead_letters_that_message_alone(
    processor: IngestProcessor, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PatientLock.commit

    def picky(lock: PatientLock, commit: IngestCommit) -> object:
        if any(batch.key.seq == 3 for batch in commit.batches):
            raise DataError("INSERT", {}, Exception("value too long"))
        return real(lock, commit)

    monkeypatch.setattr(PatientLock, "commit", picky)
    result = await processor.process([_message(_batch(seq=n)) for n in range(6)])
    assert [d.outcome for d in result.dispositions] == [Outcome.REFUSED if n == 3 else Outcome.STORED
                                                        for n in range(6)]
    assert result.dispositions[3].category == "store"
    assert store.ingested_batches() == 5 and store.dead_letter_count() == 1


async def test_a_bug_triggered_by_one_message_dead_letters_it_alone(
    processor: IngestProcessor, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = processor.engine.evaluate

    def buggy(states: object, samples_by_patient: dict[str, object], settings: object = None) -> object:
        if "pt-bug" in samples_by_patient:
            raise ZeroDivisionError("division by zero")
        return real(states, samples_by_patient, settings)  # type: ignore[arg-type]

    monkeypatch.setattr(processor.engine, "evaluate", buggy)
    result = await processor.process([_message(_batch(seq=n, patient="pt-bug" if n == 1 else "pt-1"))
                                      for n in range(4)])
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED, Outcome.REFUSED, Outcome.STORED,
                                                        Outcome.STORED]
    assert result.dispositions[1].category == "internal"
    assert "ZeroDivisionError" in store.dead_letters()[0].reason


async def test_values_per_call_are_bounded_and_the_rest_waits(store: Store, influx: InfluxV1Client) -> None:
    processor = IngestProcessor(store, influx, RuleEngine([]), clock=lambda: NOW, max_values_per_call=5)
    messages = [_message(_batch(seq=n)) for n in range(6)]  # 2 values each
    first = await processor.process(messages)
    assert len(first.dispositions) == 3
    second = await processor.process(messages[3:])
    assert len(second.dispositions) == 3


async def test_hypoxic_patient_gets_one_alert_and_replays_add_none(processor: IngestProcessor,
                                                                   store: Store) -> None:
    start = NOW - 200 * S
    first = _batch(seq=1, values=[85.0] * 61, start_ns=start)
    second = _batch(seq=2, values=[84.0] * 30, start_ns=start + 61 * S)
    assert await _one(processor, first) is Outcome.STORED
    result = await processor.process([_message(second), _message(first)])
    assert [d.outcome for d in result.dispositions] == [Outcome.STORED, Outcome.DUPLICATE]
    [alert] = store.alerts()
    assert (alert.rule, alert.patient, alert.state, alert.episode_start_ns, alert.worst_value) == (
        "spo2_low_sustained", "pt-1", "firing", start, 84.0)


async def test_a_restart_mid_episode_continues_the_same_alert_and_resolves_it_once(
    store: Store, influx: InfluxV1Client
) -> None:
    start = NOW - 600 * S
    before = IngestProcessor(store, influx, RuleEngine(build_rules(_SPO2_RULE)), clock=lambda: NOW)
    await before.process([_message(_batch(seq=1, values=[85.0] * 90, start_ns=start))])
    # A new process (as after a restart) with fresh rule objects: the state comes from the store.
    after = IngestProcessor(store, influx, RuleEngine(build_rules(_SPO2_RULE)), clock=lambda: NOW)
    await after.process([_message(_batch(seq=2, values=[84.0] * 30, start_ns=start + 90 * S))])
    await after.process([_message(_batch(seq=3, values=[97.0] * 120, start_ns=start + 120 * S))])
    [alert] = store.alerts()
    assert (alert.episode_start_ns, alert.state, alert.worst_value, alert.resolved_ns) == (
        start, "resolved", 84.0, start + 180 * S)


async def test_a_late_batch_is_reevaluated_over_its_window_not_judged_live(processor: IngestProcessor,
                                                                           fake: FakeInflux) -> None:
    await processor.process([_message(_batch(seq=5, values=[97.0] * 5, start_ns=NOW - 10 * S))])
    result = await processor.process([_message(_batch(seq=1, values=[85.0] * 60, start_ns=NOW - 3600 * S))])
    assert result.late_windows == 1
    [query] = fake.queries
    assert '"patient" = $patient' in query and f"time >= {NOW - 3600 * S - 120 * S}" in query


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512), st.sampled_from([TOPIC, "vb/v1/other/data", "x"]))
def test_triage_of_any_bytes_is_a_batch_or_one_refusal(payload: bytes, topic: str) -> None:
    verdict = triage(topic, payload, now_ns=NOW, limits=IngestLimits())
    assert isinstance(verdict, RefusedVerdict) and verdict.reason


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_triage_of_mutated_valid_batches_never_raises(data: st.DataObject) -> None:
    payload = bytearray(encode_batch(_batch(values=[97.0, 95.0, 93.0])))
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    verdict = triage(TOPIC, bytes(payload), now_ns=NOW)
    assert verdict is not None


def test_processor_clock_is_utc(processor: IngestProcessor) -> None:
    assert processor.now() == dt.datetime.fromtimestamp(NOW / 1e9, dt.UTC)


def test_a_message_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _message(b"x").topic = "y"  # type: ignore[misc]


async def test_each_patient_is_judged_with_their_settings_in_force(store: Store, influx: InfluxV1Client) -> None:
    from cloud.ingest import SettingsCache
    from cloud.rules import PatientSettings
    from cloud.store import SettingsStore

    engine = RuleEngine(build_rules(_SPO2_RULE))
    processor = IngestProcessor(store, influx, engine, clock=lambda: NOW,
                                settings=SettingsCache(SettingsStore(store.engine), engine))
    at = dt.datetime.fromtimestamp(NOW / 1e9, dt.UTC)
    tuned = PatientSettings(rules={"spo2_low_sustained": {"threshold": 93, "clear_threshold": 95}})
    SettingsStore(store.engine).save("pt-1", tuned, expected_version=0, changed_by="dr", reason="r", at=at)
    values = [92.0] * 90  # normal by the rule set (below 90), low by pt-1's own threshold (below 93)
    result = await processor.process([_message(_batch(1, values, start_ns=NOW - 100 * S, patient="pt-1")),
                                      _message(_batch(2, values, start_ns=NOW - 100 * S, patient="pt-2"))])
    [opened] = result.opened
    assert (opened.patient, opened.threshold, opened.settings_version) == ("pt-1", 93.0, "1")
    assert opened.rule_version == engine.rules_for("pt-1", tuned)[0].version  # type: ignore[attr-defined]
