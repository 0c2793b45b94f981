"""HL7 v2 push through the real path: gateway spool and publisher -> Mosquitto -> ingest -> influxd and the store
(the batch and its ORU^R01 in one transaction) -> the HL7 sender -> an MLLP receiver that is down at first.
Then `vitalbridge cloud export-hl7` streams the same range back out of influxd."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from cloud.hl7 import batch_control_id, hl7_time
from tests.integration._gateway import TestGateway, running_gateway, spo2_batch
from tests.integration.helpers import wait_for
from tests.receivers import MllpReceiver, mllp_receiver
from vitalbridge.cli import main
from vitalbridge.stack import free_port

pytestmark = pytest.mark.integration

S = 10**9


async def test_batches_published_to_the_broker_arrive_at_the_receiver_as_oru_r01_once_each(
        stack: Any, tmp_path: Path, unique_name: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from cloud.service import CloudConfig, CloudService

    receiver = MllpReceiver()  # not listening yet: the messages wait in the outbox
    influx_db = unique_name("vbhl7")
    config = CloudConfig(
        mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=influx_db,
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=free_port(),
        client_id=unique_name("ingest-"), shared_group=unique_name("group-"), max_wait_ms=20.0,
        registry="off", notify=False, notify_poll_s=0.1, hl7_url=receiver.url, hl7_ack_timeout_s=2.0,
    )
    service = CloudService(config)
    await service.start()
    try:
        gateway = TestGateway(unique_name("gw"), stack.mqtt_url, tmp_path / "spool.db")
        start = time.time_ns() - 600 * S
        values = [float(90 + (i % 10)) for i in range(30)]
        async with running_gateway(gateway):
            seqs = [gateway.add(spo2_batch(gateway.gateway, "p-hl7", start + k * 30 * S, values)) for k in range(6)]
            assert await gateway.confirmed_all()
        assert service.hl7_sender is not None and service.store is not None
        await wait_for(lambda: service.health()[1]["hl7"]["outbox"].get("pending") == 6)
        assert "cannot connect" in service.health()[1]["hl7"]["last_error"]
        await receiver.start()
        expected = [batch_control_id(gateway.gateway, gateway.spool.epoch, seq) for seq in seqs]
        await wait_for(lambda: set(receiver.accepted) == set(expected), timeout_s=60)
        assert receiver.accepted == dict.fromkeys(expected, 1)
        messages = receiver.accepted_messages()
        assert [str(m.segment("MSH")(10)) for m in messages] == expected  # in order
        for k, message in enumerate(messages):
            assert str(message.segment("MSH")(9)) == "ORU^R01^ORU_R01"
            assert str(message.segment("PID")(3)).startswith("p-hl7^")
            obx = message.segments("OBX")[1:]
            assert [float(str(o(5))) for o in obx] == values
            assert str(obx[0](3)) == "150456^MDC_PULS_OXIM_SAT_O2^MDC" and str(obx[0](4)) == "1.1.1.1"
            assert str(obx[0](14)) == hl7_time(start + k * 30 * S)
            assert str(obx[0](18)) == f"p-hl7-ox^{gateway.gateway}"
        await wait_for(lambda: service.hl7_sender is not None
                       and service.hl7_sender.health()["outbox"].get("sent") == 6)
        assert service.health()[1]["hl7"]["outbox"] == {"pending": 0, "sent": 6, "failed": 0}
    finally:
        await service.stop()

    # The stored range, streamed again from influxd by the command (in a thread: it runs its own event loop).
    try:
        receiver.accepted.clear()
        receiver.received.clear()
        begin = dt.datetime.fromtimestamp(start / S - 60, dt.UTC).isoformat()
        end = dt.datetime.fromtimestamp(time.time() + 60, dt.UTC).isoformat()
        code = await asyncio.to_thread(main, [
            "cloud", "export-hl7", "--patient", "p-hl7", "--start", begin, "--end", end, "--to", receiver.url,
            "--influx-url", stack.influx_url, "--influx-db", influx_db, "--chunk", "50"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "180 observations in 4 ORU^R01 messages" in out and "acknowledged 4 messages (180 observations)" in out
        assert len(receiver.accepted) == 4 and set(receiver.accepted.values()) == {1}
        sent = [float(str(o(5))) for m in receiver.accepted_messages() for o in m.segments("OBX")[1:]]
        assert sent == values * 6
    finally:
        await receiver.stop()


async def test_export_hl7_says_plainly_when_the_receiver_or_the_database_cannot_be_reached(
        stack: Any, unique_name: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from cloud.timeseries import InfluxV1Client, batch_to_lines

    influx_db = unique_name("vbhl7x")
    influx = InfluxV1Client(stack.influx_url, influx_db)
    try:
        await influx.create_database()
        await influx.write_lines(batch_to_lines(spo2_batch("gw", "p-x", 1_767_225_600 * S, [97.0, 96.0])))
    finally:
        await influx.aclose()
    nobody = f"mllp://127.0.0.1:{free_port()}"
    args = ["cloud", "export-hl7", "--patient", "p-x", "--start", "2026-01-01", "--end", "2026-01-02", "--to", nobody,
            "--influx-url", stack.influx_url]
    code = await asyncio.to_thread(main, [*args, "--influx-db", influx_db])
    captured = capsys.readouterr()
    assert code == 1 and "2 observations in 1 ORU^R01 messages" in captured.out
    assert f"stopped: cannot connect to {nobody}" in captured.err and "Traceback" not in captured.err
    code = await asyncio.to_thread(main, [*args, "--influx-db", unique_name("vbhl7-missing")])
    captured = capsys.readouterr()
    assert code == 1 and "database not found" in captured.err and "Traceback" not in captured.err


@pytest.mark.slow
async def test_a_week_of_vitals_streams_as_oru_r01_with_every_observation_accounted_for(
        stack: Any, unique_name: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from cloud.timeseries import InfluxV1Client, batch_to_lines
    from vitals.samples import Batch, Sample, Stream

    influx_db = unique_name("vbhl7week")
    week_start = 1_763_942_400 * S  # 2025-11-24T00:00:00Z
    minute = 60 * S
    influx = InfluxV1Client(stack.influx_url, influx_db)
    expected: dict[tuple[str, int], float] = {}
    try:
        await influx.create_database()
        for day in range(7):  # an oximeter every minute, a cuff three times a day
            base = week_start + day * 24 * 60 * minute
            spo2 = [Sample("spo2", base + i * minute, float(92 + (i * 7 + day) % 8)) for i in range(24 * 60)]
            pulse = [Sample("pulse_rate", base + i * minute, float(60 + (i * 3 + day) % 30)) for i in range(24 * 60)]
            bp = [Sample(metric, base + hour * 60 * minute, value) for hour in (8, 14, 20)
                  for metric, value in (("bp_systolic", 120.0 + day), ("bp_diastolic", 80.0 - day))]
            oximeter = (Stream.from_samples("spo2", "%", spo2), Stream.from_samples("pulse_rate", "/min", pulse))
            batches = [Batch("gw-w", day, "p-week", "ox-1", "generic.pulse_oximeter", oximeter),
                       Batch("gw-w", 100 + day, "p-week", "cuff-1", "generic.bp_cuff",
                             (Stream.from_samples("bp_systolic", "mm[Hg]", bp[0::2]),
                              Stream.from_samples("bp_diastolic", "mm[Hg]", bp[1::2])))]
            for batch in batches:
                await influx.write_lines(batch_to_lines(batch))
                for stream in batch.streams:
                    expected.update({(s.metric, s.time_ns): s.value for s in stream.samples()})
    finally:
        await influx.aclose()
    async with mllp_receiver() as receiver:
        code = await asyncio.to_thread(main, [
            "cloud", "export-hl7", "--patient", "p-week", "--start", "2025-11-24", "--end", "2025-11-30T23:59:59Z",
            "--to", receiver.url, "--influx-url", stack.influx_url, "--influx-db", influx_db])
        out = capsys.readouterr().out
        assert code == 0, out
        total = len(expected)
        assert total == 7 * (2 * 24 * 60 + 6)
        assert f"{total} observations in" in out and f"({total} observations)" in out
        assert set(receiver.accepted.values()) == {1}
        got: dict[tuple[str, int], float] = {}
        names = {"MDC_PULS_OXIM_SAT_O2": "spo2", "MDC_PULS_OXIM_PULS_RATE": "pulse_rate",
                 "MDC_PRESS_BLD_NONINV_SYS": "bp_systolic", "MDC_PRESS_BLD_NONINV_DIA": "bp_diastolic"}
        for message in receiver.accepted_messages():
            for obx in message.segments("OBX")[1:]:
                stamp = dt.datetime.strptime(str(obx(14))[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
                key = (names[str(obx(3)(1)(2))], int(stamp.timestamp()) * S)
                assert key not in got  # no observation twice
                got[key] = float(str(obx(5)))
        assert got == expected  # every observation, once, with its value
