"""A glucose meter's record cursor is saved only once the fetched records are in the gateway's spool.

The meter is a fake peripheral answering RACP writes with a real meter's bytes; the agent is real
(decoders, pipeline, SQLite spool on disk). "Killing" the gateway between fetch and spool is
cancelling the transport and dropping the agent before its next tick: the next gateway on the
same spool and state folder must ask the meter for the same records, and end with all of them.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from device_profiles import DeviceProfile, load_profile
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.glucose import GlucoseConcentration, GlucoseConcentrationUnit, GlucoseMeasurement
from device_profiles.gatt.glucose_context import GlucoseMeasurementContext, Meal
from device_profiles.ieee11073 import Measured
from device_profiles.registry import default_registry
from edge.agent import EdgeAgent
from edge.config import DeviceConfig, GatewayConfig
from edge.pipeline import Pipeline
from edge.spool import BatchSpool, SpoolFullError
from edge.transports import TransportRegistry
from edge.transports.ble import BleTransport
from simulators.devices.gatt_encode import (
    encode_glucose_measurement,
    encode_glucose_measurement_context,
    encode_racp_response,
)
from tests.agent_fakes import never_started
from tests.ble_fake import FakeGlucoseMeter
from tests.unit._transport_recorder import Recorder
from vitals.codec import decode_batch

ADDRESS = "F0:5E:C1:00:00:43"
NOW_NS = 1_709_625_600_000_000_000  # 2024-03-05 08:00 UTC, just after the readings
GLUCOSE_PROFILE = Path(__file__).parents[2] / "device_profiles" / "library" / "generic" / "glucose_meter.yaml"
REPORT_ALL = b"\x01\x01"


MMOL_PER_L = {1: 5.1, 2: 7.2, 3: 6.3, 4: 9.4, 7: 4.7}  # no three on a line: compression keeps each one


def reading(sequence_number: int) -> bytes:
    """Stored record ``n`` (:data:`MMOL_PER_L`), taken on 2024-03-05 at 07:n."""
    concentration = GlucoseConcentration(Measured(MMOL_PER_L[sequence_number] / 1000, exponent=-4),
                                         GlucoseConcentrationUnit.MOL_PER_L)
    return encode_glucose_measurement(GlucoseMeasurement(sequence_number, DateTime(2024, 3, 5, 7, sequence_number, 0),
                                                         time_offset_min=0, concentration=concentration))


class Gateway:
    """One gateway life: an agent on ``root``'s spool and a BLE transport on ``root``'s state folder."""

    def __init__(self, root: Path, meter: FakeGlucoseMeter, profile: DeviceProfile,
                 spool: BatchSpool | None = None) -> None:
        device = DeviceConfig("meter-1", "patient-1", profile.id, "ble", ADDRESS, {"state_dir": str(root / "state")})
        transports = TransportRegistry()
        transports.add("ble", never_started)  # the test runs the transport itself
        config = GatewayConfig(gateway="home-1", mqtt_url="mqtt://127.0.0.1:1", spool=str(root / "spool.db"),
                               utc_offset_s=0, devices=(device,))
        self.spool = spool if spool is not None else BatchSpool(root / "spool.db")
        self.agent = EdgeAgent(config, profiles={profile.id: profile}, decoders=default_registry(),
                               transports=transports, pipeline_factory=lambda _device: Pipeline(),
                               clock_ns=lambda: NOW_NS, spool=self.spool)
        self.transport = BleTransport(device, profile, lambda: NOW_NS, backend=meter.peripheral,
                                      rng=random.Random(5))
        self.recorder = Recorder()
        self.task: asyncio.Task[None] | None = None

    async def connect_and_fetch(self) -> dict[str, object]:
        """Run the transport until the meter answered one fetch; its report."""
        self.task = asyncio.create_task(self.transport.run(self.agent.delivery("meter-1"), self.recorder.report))
        await self.recorder.until(lambda: len(self.recorder.fetches()) == 1)
        return self.recorder.fetches()[0]

    async def kill(self) -> None:
        """Stop without the shutdown tick: whatever is not spooled yet is lost with the process."""
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.spool.close()


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait for a condition nothing signals (a file written by a background task)."""
    async with asyncio.timeout(20):  # a guard against a hang, not a timing assertion
        while not predicate():
            await asyncio.sleep(0.01)


def cursor_file(root: Path) -> Path:
    return root / "state" / "ble-records-meter-1.json"


def spooled_glucose(spool: BatchSpool) -> list[float]:
    values: list[float] = []
    for _seq, payload in spool.pending(1000):
        for stream in decode_batch(payload).streams:
            if stream.metric == "blood_glucose":
                values += [round(float(v), 2) for v in stream.values]
    return sorted(values)


async def test_a_gateway_killed_between_fetch_and_spool_fetches_the_records_again_and_loses_none(
        tmp_path: Path) -> None:
    profile = load_profile(GLUCOSE_PROFILE)
    meter = FakeGlucoseMeter.at(ADDRESS, encode_racp_response, [reading(n) for n in (1, 2, 3)])

    first = Gateway(tmp_path, meter, profile)
    assert (await first.connect_and_fetch())["records"] == 3
    assert first.transport.records is not None and first.transport.records.last_seen == 3
    await asyncio.sleep(0)  # give a wrongly eager cursor every chance to write itself
    assert not cursor_file(tmp_path).exists()  # fetched, not spooled: nothing committed
    await first.kill()

    second = Gateway(tmp_path, meter, profile)
    assert len(second.spool) == 0  # the first gateway's readings died with it
    assert (await second.connect_and_fetch())["records"] == 3
    assert [w.data for w in meter.peripheral.writes] == [REPORT_ALL, REPORT_ALL]  # asked again, from scratch
    assert not cursor_file(tmp_path).exists()
    second.agent.tick()  # the batch interval ends: the readings are spooled
    await eventually(lambda: cursor_file(tmp_path).exists())
    assert json.loads(cursor_file(tmp_path).read_text()) == {"address": ADDRESS, "last_sequence_number": 3}
    assert spooled_glucose(second.spool) == [5.1, 6.3, 7.2]
    meter.store(reading(4))  # a new reading on the meter
    await second.kill()

    third = Gateway(tmp_path, meter, profile)
    assert (await third.connect_and_fetch())["records"] == 1
    assert meter.peripheral.writes[-1].data == b"\x01\x03\x01\x04\x00"  # only what is new: >= 4
    third.agent.tick()
    await eventually(lambda: json.loads(cursor_file(tmp_path).read_text())["last_sequence_number"] == 4)
    assert spooled_glucose(third.spool) == [5.1, 6.3, 7.2, 9.4]
    await third.kill()


class RefusingSpool(BatchSpool):
    """A spool whose disk is full: every append is refused."""

    def append(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise SpoolFullError("simulated: database or disk is full")


async def test_records_the_spool_refused_are_asked_for_again_on_the_next_connection(tmp_path: Path) -> None:
    profile = load_profile(GLUCOSE_PROFILE)
    meter = FakeGlucoseMeter.at(ADDRESS, encode_racp_response, [reading(n) for n in (1, 2)])
    gateway = Gateway(tmp_path, meter, profile, spool=RefusingSpool(tmp_path / "spool.db"))
    assert (await gateway.connect_and_fetch())["records"] == 2
    gateway.agent.tick()  # the spool refuses the batch: the readings are dropped (and counted)
    assert gateway.agent.stats.spool_full_drops == 2
    records = gateway.transport.records
    assert records is not None
    await eventually(lambda: records.last_seen is None)  # rolled back to what is committed
    assert not cursor_file(tmp_path).exists()
    meter.peripheral.drop()  # the meter hangs up; at its next advertisement the gateway asks again
    await gateway.recorder.until(lambda: len(gateway.recorder.fetches()) == 2)
    assert [w.data for w in meter.peripheral.writes] == [REPORT_ALL, REPORT_ALL]
    await gateway.kill()


async def test_a_plain_deliver_function_commits_at_once(tmp_path: Path) -> None:
    """Outside an agent (no spool to wait for), delivering is taking: the cursor is committed after the fetch."""
    profile = load_profile(GLUCOSE_PROFILE)
    meter = FakeGlucoseMeter.at(ADDRESS, encode_racp_response, [reading(7)])
    device = DeviceConfig("meter-1", "patient-1", profile.id, "ble", ADDRESS, {"state_dir": str(tmp_path)})
    transport = BleTransport(device, profile, lambda: NOW_NS, backend=meter.peripheral)
    recorder = Recorder()
    task = asyncio.create_task(transport.run(recorder.deliver, recorder.report))
    await eventually(lambda: (tmp_path / "ble-records-meter-1.json").exists())
    assert json.loads((tmp_path / "ble-records-meter-1.json").read_text())["last_sequence_number"] == 7
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_record_with_context_reaches_the_agent_as_reading_plus_context_event_of_the_same_sequence_number(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = load_profile(GLUCOSE_PROFILE)
    meter = FakeGlucoseMeter.at(ADDRESS, encode_racp_response)
    concentration = GlucoseConcentration(Measured(0.0072, exponent=-4), GlucoseConcentrationUnit.MOL_PER_L)
    meter.store(encode_glucose_measurement(GlucoseMeasurement(2, DateTime(2024, 3, 5, 7, 2, 0), time_offset_min=0,
                                                              concentration=concentration, context_follows=True)),
                context=encode_glucose_measurement_context(GlucoseMeasurementContext(2, meal=Meal.POSTPRANDIAL)))
    gateway = Gateway(tmp_path, meter, profile)
    events: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(gateway.agent.publisher, "event", lambda kind, **detail: events.append((kind, detail)))
    assert (await gateway.connect_and_fetch())["records"] == 1
    statuses = [detail for kind, detail in events if kind == "device_status"]
    assert statuses[0]["sequence_number"] == 2 and statuses[0]["context_follows"] is True
    assert statuses[1]["glucose_context"] == {"sequence_number": 2, "meal": "postprandial"}
    gateway.agent.tick()
    assert spooled_glucose(gateway.spool) == [7.2]
    await gateway.kill()
