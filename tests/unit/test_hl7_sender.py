"""The MLLP client and the HL7 outbox sender against a real MLLP receiver on a free loopback port.

The receiver is down at first, answers AE before AA, refuses with AR, stays silent, and restarts
mid-stream; at the end every message is acknowledged exactly once by its control id, in order. The
outbox runs on SQLite and on PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import IntegrityError

from cloud.alerting import AlertSummary, DeliveryError, OutgoingMessage, parse_recipient
from cloud.hl7 import (
    Ack,
    Hl7AlertChannel,
    Hl7Metrics,
    Hl7Sender,
    Hl7SendError,
    Hl7SenderSettings,
    MllpClient,
    ObservationReport,
    alert_control_id,
    build_oru_r01,
    parse_ack,
    parse_mllp_url,
)
from cloud.store import DeadLetterEntry, Hl7Outbound, Hl7OutboxStore, IngestCommit, Store
from tests.receivers import MllpReceiver, mllp_receiver
from vitals.samples import Sample

T0 = 1_764_690_300 * 10**9


def message(n: int) -> Hl7Outbound:
    control_id = f"C{n:04d}"
    report = ObservationReport(control_id, T0, "p1", "gw", "ox", f"gw.e.{n}", [Sample("spo2", T0 + n * 10**9, 97.0)])
    return Hl7Outbound(control_id, "oru_r01", "p1", build_oru_r01(report))


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def skip(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def sender(store: Store, url: str, clock: Clock, **settings: float) -> Hl7Sender:
    base: dict[str, float] = {"retry_initial_s": 1.0, "retry_max_s": 8.0, "batch": 100}
    return Hl7Sender(Hl7OutboxStore(store.engine), MllpClient(parse_mllp_url(url), connect_timeout_s=2.0,
                                                              ack_timeout_s=1.0),
                     clock=clock, settings=Hl7SenderSettings(**(base | settings)),  # type: ignore[arg-type]
                     metrics=Hl7Metrics(CollectorRegistry()), rng=random.Random(1))


async def drain(worker: Hl7Sender, clock: Clock, rounds: int = 50) -> None:
    for _ in range(rounds):
        await worker.run_once()
        if worker.counts.get("pending", 0) == 0:
            return
        clock.skip(10)  # past any backoff
    raise AssertionError(f"still pending: {worker.counts}")


def first_accepted_order(receiver: MllpReceiver) -> list[str]:
    return [str(m.segment("MSH")(10)) for m in receiver.accepted_messages()]


# -- the client ---------------------------------------------------------------------------------------
async def test_the_client_reads_each_acknowledgement_code() -> None:
    async with mllp_receiver() as receiver:
        client = MllpClient(parse_mllp_url(receiver.url), ack_timeout_s=0.5)
        try:
            receiver.answers = ["AE", "AR", "CE", "CR", "silent"]
            with pytest.raises(Hl7SendError) as error:
                await client.send(message(1).body, "C0001")
            assert (error.value.code, error.value.permanent) == ("AE", False)
            assert "test receiver says AE" in str(error.value)
            with pytest.raises(Hl7SendError) as error:
                await client.send(message(1).body, "C0001")
            assert (error.value.code, error.value.permanent) == ("AR", True)
            with pytest.raises(Hl7SendError) as error:
                await client.send(message(1).body, "C0001")
            assert (error.value.code, error.value.permanent) == ("CE", False)
            with pytest.raises(Hl7SendError) as error:
                await client.send(message(1).body, "C0001")
            assert (error.value.code, error.value.permanent) == ("CR", True)
            with pytest.raises(Hl7SendError, match=r"no ACK .* within 0\.5 s") as error:
                await client.send(message(1).body, "C0001")
            assert not error.value.permanent and not client.connected  # a late ACK cannot be mistaken
            ack = await client.send(message(1).body, "C0001")
            assert ack == Ack("AA", "C0001", "accepted") and client.connects == 2
            assert receiver.accepted == {"C0001": 1} and len(receiver.received) == 6
        finally:
            await client.aclose()


async def test_the_client_says_when_nobody_listens_and_when_an_ack_names_another_message() -> None:
    receiver = MllpReceiver()
    client = MllpClient(parse_mllp_url(receiver.url), connect_timeout_s=1.0, ack_timeout_s=1.0)
    with pytest.raises(Hl7SendError, match=f"cannot connect to {receiver.url}") as error:
        await client.send(message(1).body, "C0001")
    assert not error.value.permanent and not error.value.code
    async with mllp_receiver(receiver.port):
        with pytest.raises(Hl7SendError, match="acknowledged 'C0001', not 'C0002'"):
            await client.send(message(1).body, "C0002")
        assert (await client.send(message(1).body, "C0001")).code == "AA"
    await client.aclose()


@pytest.mark.parametrize(("text", "code", "control_id", "reason"), [
    ("MSH|^~\\&|R||S||20260101||ACK^R01^ACK|1|P|2.6\rMSA|AA|X1\r", "AA", "X1", ""),
    ("MSH|^~\\&|R||S||20260101||ACK|1|P|2.6\rMSA|ae|X1|bad \\F\\ field\r", "AE", "X1", "bad | field"),
    ("MSH|^~\\&|R||S||20260101||ACK|1|P|2.6\rMSA|AR|X1\rERR|||207|E||||no such patient\r", "AR", "X1",
     "no such patient"),
])
def test_parse_ack(text: str, code: str, control_id: str, reason: str) -> None:
    assert parse_ack(text) == Ack(code, control_id, reason)


@pytest.mark.parametrize("text", ["", "hello", "MSH|^~\\&|R\rPID|1\r"])
def test_parse_ack_refuses_what_is_not_an_ack(text: str) -> None:
    with pytest.raises(Hl7SendError, match="not an ACK"):
        parse_ack(text)


@pytest.mark.parametrize(("url", "error"), [
    ("mllp://ehr.example.org:2575", None), ("mllp://[::1]:2575", None), ("http://x:1", "not an mllp"),
    ("mllp://x", "not an mllp"), ("mllp://x:99999", "not an mllp"), ("mllp://x:2575/path", "only a host and a port"),
])
def test_parse_mllp_url(url: str, error: str | None) -> None:
    if error is None:
        assert parse_mllp_url(url).port == 2575
    else:
        with pytest.raises(ValueError, match=error):
            parse_mllp_url(url)


# -- the outbox and the sender --------------------------------------------------------------------------
async def test_a_receiver_down_at_first_then_naks_then_restarts_mid_stream_gets_each_message_once_in_order(
        store: Store) -> None:
    clock = Clock()
    outbox = Hl7OutboxStore(store.engine)
    messages = [message(n) for n in range(30)]
    assert outbox.enqueue(messages[:20], clock()) == 20
    assert outbox.enqueue(messages[:25], clock()) == 5  # control ids already queued are not queued twice
    receiver = MllpReceiver()
    worker = sender(store, receiver.url, clock, batch=10)
    # Down: nothing is sent, nothing is lost, the first message waits and holds the rest back.
    assert await worker.run_once() == 0
    assert outbox.counts() == {"pending": 25, "sent": 0, "failed": 0}
    first = outbox.rows()[0]
    assert first.attempts == 1 and "cannot connect" in first.last_error and first.next_attempt_at > clock()
    assert [r.attempts for r in outbox.rows()[1:3]] == [0, 0]
    assert worker.health()["last_error"].startswith("cannot connect")
    await receiver.start()
    try:
        receiver.answers = ["AE"]  # the first message: an application error, then accepted on the retry
        assert await worker.run_once() == 0  # still in its backoff
        clock.skip(10)
        assert await worker.run_once() == 0  # AE: retried later, the rest wait
        clock.skip(10)
        assert await worker.run_once() == 10
        # Restarted mid-stream: one message gets no ACK (it did arrive), then the receiver goes away.
        receiver.answers = ["AA", "AA", "silent"]
        outbox.enqueue(messages[25:], clock())
        await worker.run_once()
        await receiver.stop()
        clock.skip(10)
        assert await worker.run_once() == 0
        await receiver.start()
        await drain(worker, clock)
    finally:
        await receiver.stop()
        await worker.client.aclose()
    ids = [m.control_id for m in messages]
    assert outbox.counts() == {"pending": 0, "sent": 30, "failed": 0}
    assert receiver.accepted == dict.fromkeys(ids, 1)  # every message acknowledged exactly once
    assert first_accepted_order(receiver) == ids  # and in the order they were queued
    received = [str(m.segment("MSH")(10)) for m in receiver.received]
    assert received.count("C0000") == 2 and received.count("C0012") == 2  # the AE'd one, the unanswered one
    assert worker.sent == 30 and worker.health()["outbox"] == {"pending": 0, "sent": 30, "failed": 0}
    assert await worker.prune() == 0  # acknowledged moments ago: kept
    clock.skip(8 * 24 * 3600)
    assert await worker.prune() == 30 and outbox.counts() == {"pending": 0, "sent": 0, "failed": 0}


async def test_a_refused_message_is_failed_with_the_reason_and_the_rest_go_on(store: Store) -> None:
    clock = Clock()
    outbox = Hl7OutboxStore(store.engine)
    outbox.enqueue([message(n) for n in range(5)], clock())
    async with mllp_receiver() as receiver:
        worker = sender(store, receiver.url, clock)
        receiver.answers = ["AA", "AR"]
        assert await worker.run_once() == 4
        await worker.client.aclose()
    assert outbox.counts() == {"pending": 0, "sent": 4, "failed": 1}
    [failed] = outbox.rows("failed")
    assert failed.control_id == "C0001" and "refused the message (AR): test receiver says AR" in failed.last_error
    assert set(receiver.accepted) == {"C0000", "C0002", "C0003", "C0004"}


async def test_an_application_error_that_never_clears_is_given_up_after_max_attempts(store: Store) -> None:
    clock = Clock()
    outbox = Hl7OutboxStore(store.engine)
    outbox.enqueue([message(1), message(2)], clock())
    async with mllp_receiver() as receiver:
        worker = sender(store, receiver.url, clock, max_attempts=3)
        receiver.answers = ["AE"] * 3
        await drain(worker, clock)
        await worker.client.aclose()
    [failed] = outbox.rows("failed")
    assert (failed.control_id, failed.attempts) == ("C0001", 3) and "(AE)" in failed.last_error
    assert receiver.accepted == {"C0002": 1}


def test_rows_queued_with_an_ingest_commit_roll_back_with_it(store: Store) -> None:
    at = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    store.commit_ingest(IngestCommit(at=at, hl7=[message(1), message(2)]))
    outbox = Hl7OutboxStore(store.engine)
    assert [r.control_id for r in outbox.rows()] == ["C0001", "C0002"]
    broken = Hl7Outbound("C0004", "oru_r01", "p1", None)  # type: ignore[arg-type]  # NOT NULL fails at commit
    with pytest.raises(IntegrityError):
        store.commit_ingest(IngestCommit(at=at, hl7=[message(3), broken],
                                         dead_letters=[DeadLetterEntry("vb/v1/gw/data", "test", b"x")]))
    assert store.dead_letter_count() == 0  # the whole transaction is undone, the good message with it
    assert [r.control_id for r in outbox.rows()] == ["C0001", "C0002"]


# -- the alert channel --------------------------------------------------------------------------------
def outgoing(address: str) -> OutgoingMessage:
    alert = AlertSummary(3, "p1", "spo2_low", "spo2", "critical", "firing", "SpO2 below 85 %", "fire",
                         dt.datetime(2026, 12, 2, 8, tzinfo=dt.UTC), 1, False)
    return OutgoingMessage(11, "vb-0123456789abcdef", "hl7", address, "p1", 1, (alert,))


async def test_the_hl7_channel_sends_an_alert_as_oru_r40_and_maps_refusals() -> None:
    assert parse_recipient("mllp://ehr.example.org:2575").channel == "hl7"
    with pytest.raises(ValueError, match="mllp://host:port"):
        parse_recipient("mllp://ehr.example.org")
    channel = Hl7AlertChannel(clock=lambda: T0, ack_timeout_s=1.0)
    try:
        async with mllp_receiver() as receiver:
            await channel.send(outgoing(receiver.url))
            [received] = receiver.received
            assert str(received.segment("MSH")(9)) == "ORU^R40^ORU_R01"
            assert str(received.segment("MSH")(10)) == alert_control_id("vb-0123456789abcdef")
            receiver.answers = ["AR"]
            with pytest.raises(DeliveryError) as error:
                await channel.send(outgoing(receiver.url))
            assert error.value.permanent
            receiver.answers = ["AE"]
            with pytest.raises(DeliveryError) as error:
                await channel.send(outgoing(receiver.url))
            assert not error.value.permanent
        with pytest.raises(DeliveryError, match="not an mllp"):
            await channel.send(outgoing("mllp://nowhere"))
    finally:
        await channel.aclose()


# -- settings and the command's mistakes ------------------------------------------------------------------
def test_the_hl7_endpoint_setting_is_checked_and_named() -> None:
    from cloud.service import CloudConfig, ConfigError

    assert CloudConfig.from_env({"VB_HL7_URL": "mllp://ehr:2575"}).hl7_url == "mllp://ehr:2575"
    assert CloudConfig.from_env({"VB_HL7_URL": ""}).hl7_url is None
    with pytest.raises(ConfigError, match=r"VB_HL7_URL: .*not an mllp://host:port URL"):
        CloudConfig.from_env({"VB_HL7_URL": "https://ehr:2575"})


@pytest.mark.parametrize(("args", "error"), [
    (["--start", "yesterday", "--end", "2026-01-02", "--to", "mllp://h:1"], "is not an ISO 8601 date"),
    (["--start", "2026-01-02", "--end", "2026-01-01", "--to", "mllp://h:1"], "is before --start"),
    (["--start", "2026-01-01", "--end", "2026-01-02", "--to", "h:1"], "is not an mllp://host:port URL"),
    (["--start", "2026-01-01", "--end", "2026-01-02", "--to", "mllp://h:1", "--chunk", "0"], "--chunk must be"),
])
def test_export_hl7_mistakes_are_one_clear_line(args: list[str], error: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from vitalbridge.cli import main

    try:
        code = main(["cloud", "export-hl7", "--patient", "p1", *args])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and error in err and "Traceback" not in err
