"""The BLE transport fetching a glucose meter's stored records over the Record Access Control Point.

The meter is a fake peripheral that answers RACP writes with the exact bytes a real meter sends
(records from ``encode_glucose_measurement``, the Response Code from ``encode_racp_response``).
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import DeviceProfile, load_profile
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.glucose import GlucoseConcentration, GlucoseConcentrationUnit, GlucoseMeasurement
from device_profiles.gatt.racp import (
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseCode,
    report_all_records,
    report_records_from,
)
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, default_registry
from edge.config import DeviceConfig
from edge.transports import Payload
from edge.transports._racp_session import RacpFetch, glucose_sequence_number
from edge.transports.ble import (
    GLUCOSE_MEASUREMENT_UUID,
    RACP_UUID,
    BleTransport,
    StoredRecordCursor,
)
from simulators.devices.gatt_encode import encode_glucose_measurement, encode_racp_response
from tests.ble_fake import FakeBlePeripheral, FakeGlucoseMeter, FakeWrite
from tests.unit._transport_recorder import Recorder
from vitals.samples import Sample

ADDRESS = "F0:5E:C1:00:00:42"
NOW_NS = 1_700_000_000_000_000_000
GLUCOSE_PROFILE = Path(__file__).parents[2] / "device_profiles" / "library" / "generic" / "glucose_meter.yaml"

REPORT_ALL = b"\x01\x01"  # Report Stored Records, All Records
ABORT = b"\x03\x00"  # Abort Operation, Null
SUCCESS = b"\x06\x00\x01\x01"  # Response Code to Report Stored Records: Success
NO_RECORDS = b"\x06\x00\x01\x06"  # ... No Records Found


def reading(sequence_number: int, mmol_per_l: float = 5.5) -> bytes:
    """A stored record as a meter notifies it: mol/L with exponent -4, capillary blood, finger."""
    concentration = GlucoseConcentration(Measured(mmol_per_l / 1000, exponent=-4), GlucoseConcentrationUnit.MOL_PER_L)
    record = GlucoseMeasurement(sequence_number, DateTime(2024, 3, 5, 8, sequence_number % 60, 0),
                                time_offset_min=0, concentration=concentration)
    return encode_glucose_measurement(record)


def glucose_profile() -> DeviceProfile:
    return load_profile(GLUCOSE_PROFILE)


def make_meter(*sequence_numbers: int) -> FakeGlucoseMeter:
    return FakeGlucoseMeter.at(ADDRESS, encode_racp_response, [reading(n) for n in sequence_numbers])


def make_transport(profile: DeviceProfile, peripheral: FakeBlePeripheral, recorder: Recorder,
                   **options: Any) -> BleTransport:
    device = DeviceConfig("meter-1", "patient-1", profile.id, "ble", ADDRESS, options)
    return BleTransport(device, profile, lambda: NOW_NS, backend=peripheral,
                        sleep=recorder.sleep, rng=random.Random(3))


async def start(transport: BleTransport, recorder: Recorder) -> asyncio.Task[None]:
    return asyncio.create_task(transport.run(recorder.deliver, recorder.report))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def racp_write(data: bytes) -> FakeWrite:
    return FakeWrite(RACP_UUID, data, True)


def records(*payloads: bytes) -> list[Payload]:
    return [Payload(GLUCOSE_MEASUREMENT_UUID, payload, NOW_NS) for payload in payloads]


def racp_indication(data: bytes) -> Payload:
    return Payload(RACP_UUID, data, NOW_NS)


async def test_first_connection_fetches_every_stored_record_with_the_meters_exact_bytes() -> None:
    profile, meter, recorder = glucose_profile(), make_meter(1, 2, 3), Recorder()
    transport = make_transport(profile, meter.peripheral, recorder)
    task = await start(transport, recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)

    assert meter.peripheral.writes == [racp_write(REPORT_ALL)]
    assert meter.requests == [RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)]
    assert recorder.payloads == [*records(*meter.records), racp_indication(SUCCESS)]
    assert recorder.reports == [
        ("attached", {"transport": "ble", "address": ADDRESS,
                      "subscribed": ["glucose_measurement", "glucose_measurement_context",
                                      "record_access_control_point"]}),
        ("stored_records", {"request": "0101", "outcome": "success", "records": 3, "last_sequence_number": 3}),
    ]
    assert transport.records is not None and transport.records.last_seen == 3
    # The delivered records decode along the agent's path into the patient's readings.
    decode = profile.decoder_for(GLUCOSE_MEASUREMENT_UUID, default_registry())
    result = decode(recorder.payloads[0].data, DecodeContext(received_ns=NOW_NS))
    assert [(s.metric, s.value) for s in result.samples] == [("blood_glucose", 5.5)]
    assert isinstance(result.samples[0], Sample)
    await stop(task)
    assert transport.stats.sessions == 1 and transport.stats.record_fetch_failures == 0


async def test_a_reconnect_fetches_only_the_records_stored_since() -> None:
    profile, meter, recorder = glucose_profile(), make_meter(1, 2, 3), Recorder()
    transport = make_transport(profile, meter.peripheral, recorder)
    task = await start(transport, recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)
    meter.store(reading(4, 6.1))
    meter.store(reading(5, 7.2))
    meter.peripheral.drop()
    await recorder.until(lambda: len(recorder.fetches()) == 2)

    # Report Stored Records, >=, filter type sequence number, 4 (uint16 little-endian).
    assert meter.peripheral.writes == [racp_write(REPORT_ALL), racp_write(b"\x01\x03\x01\x04\x00")]
    assert meter.requests[-1] == RacpRequest(RacpOpCode.REPORT_STORED_RECORDS,
                                             RacpOperator.GREATER_THAN_OR_EQUAL_TO, low=4)
    second = recorder.payloads[4:]
    assert second == [*records(reading(4, 6.1), reading(5, 7.2)), racp_indication(SUCCESS)]
    assert recorder.fetches()[1] == {"request": "0103010400", "outcome": "success", "records": 2,
                                     "last_sequence_number": 5}
    assert recorder.kinds() == ["attached", "stored_records", "lost", "attached", "stored_records"]

    # Nothing new: the meter answers No Records Found, and nothing but that answer is delivered.
    meter.peripheral.drop()
    await recorder.until(lambda: len(recorder.fetches()) == 3)
    assert meter.peripheral.writes[-1] == racp_write(b"\x01\x03\x01\x06\x00")
    assert recorder.payloads[7:] == [racp_indication(NO_RECORDS)]
    assert recorder.fetches()[2] == {"request": "0103010600", "outcome": "no_records_found", "records": 0,
                                     "last_sequence_number": 5}
    assert transport.stats.record_fetch_failures == 0
    await stop(task)


async def test_an_empty_meter_answers_no_records_found_and_the_link_stays_up() -> None:
    profile, meter, recorder = glucose_profile(), make_meter(), Recorder()
    transport = make_transport(profile, meter.peripheral, recorder)
    task = await start(transport, recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)
    assert recorder.payloads == [racp_indication(NO_RECORDS)]
    assert recorder.fetches() == [{"request": "0101", "outcome": "no_records_found", "records": 0,
                                   "last_sequence_number": None}]
    # A reading taken while connected arrives live and moves the cursor.
    assert meter.peripheral.notify(GLUCOSE_MEASUREMENT_UUID, reading(1))
    assert recorder.payloads[-1] == records(reading(1))[0]
    assert transport.records is not None and transport.records.last_seen == 1
    assert recorder.kinds() == ["attached", "stored_records"]
    await stop(task)


async def test_a_meter_that_never_answers_times_out_and_the_transport_keeps_running() -> None:
    profile, meter, recorder = glucose_profile(), make_meter(1, 2), Recorder()
    meter.responsive = False
    transport = make_transport(profile, meter.peripheral, recorder, racp_timeout_s=0.05)
    task = await start(transport, recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)

    assert meter.peripheral.writes == [racp_write(REPORT_ALL), racp_write(ABORT)]
    assert recorder.fetches() == [{"request": "0101", "outcome": "timeout", "records": 0,
                                   "last_sequence_number": None, "error": "no RACP progress for 0.05 s"}]
    assert transport.stats.record_fetch_failures == 1
    # Still attached and delivering.
    assert meter.peripheral.notify(GLUCOSE_MEASUREMENT_UUID, reading(9))
    assert recorder.payloads == records(reading(9))
    assert recorder.kinds() == ["attached", "stored_records"]
    assert not task.done() and transport.stats.sessions == 1
    await stop(task)


async def test_an_error_response_and_a_failed_write_are_reported_without_dropping_the_link() -> None:
    profile, meter, recorder = glucose_profile(), make_meter(1), Recorder()
    meter.response_code = RacpResponseCode.OPERATOR_NOT_SUPPORTED
    transport = make_transport(profile, meter.peripheral, recorder)
    task = await start(transport, recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)
    assert recorder.payloads == [racp_indication(b"\x06\x00\x01\x04")]
    assert recorder.fetches()[0]["outcome"] == "operator_not_supported"

    def refuse(data: bytes) -> list[tuple[str, bytes]]:
        raise OSError("ATT error 0x80: procedure already in progress")

    meter.peripheral.on_write(RACP_UUID, refuse)
    meter.peripheral.drop()
    await recorder.until(lambda: len(recorder.fetches()) == 2)
    assert recorder.fetches()[1] == {"request": "0101", "outcome": "write_failed", "records": 0,
                                     "last_sequence_number": None,
                                     "error": "OSError: ATT error 0x80: procedure already in progress"}
    assert recorder.kinds() == ["attached", "stored_records", "lost", "attached", "stored_records"]
    assert transport.stats.record_fetch_failures == 2
    await stop(task)


_NO_RACP_PROFILE = """
schema_version: 1
id: acme.glucose
vendor: Acme
model: Glucose
streams:
  blood_glucose: {unit: "mmol/L"}
transport:
  ble:
    match: {service_uuids: ["1808"]}
    characteristics:
      - {name: glucose_measurement, service: "1808", uuid: "2a18", mode: notify, decoder: gatt.glucose_measurement}
examples:
  - {characteristic: glucose_measurement, hex: "06 0100 E807010F081E00 37C0 11",
     expect: {samples: [{metric: blood_glucose, value: 5.5}]}}
"""


@pytest.mark.parametrize("case", ["profile_without_racp", "device_without_racp"])
async def test_without_a_racp_on_both_sides_nothing_is_written(tmp_path: Path, case: str) -> None:
    if case == "profile_without_racp":
        path = tmp_path / "acme" / "glucose.yaml"
        path.parent.mkdir()
        path.write_text(_NO_RACP_PROFILE)
        profile, meter = load_profile(path), make_meter(1, 2)
        peripheral = meter.peripheral
    else:
        profile, peripheral = glucose_profile(), FakeBlePeripheral(ADDRESS, {"2a18": None})
    recorder = Recorder()
    transport = make_transport(profile, peripheral, recorder)
    task = await start(transport, recorder)
    await recorder.until(lambda: "attached" in recorder.kinds())
    for _ in range(10):  # give a fetch, had one started, every chance to write
        await asyncio.sleep(0)
    assert peripheral.notify("2a18", reading(7))
    assert peripheral.writes == []
    assert recorder.payloads == records(reading(7))
    assert recorder.kinds() == ["attached"]
    assert (transport.records is None) == (case == "profile_without_racp")
    await stop(task)


async def test_the_cursor_survives_a_gateway_restart_in_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    profile, meter = glucose_profile(), make_meter(1, 2, 3)
    recorder = Recorder()
    task = await start(make_transport(profile, meter.peripheral, recorder, state_dir=str(state_dir)), recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)
    await stop(task)
    state_file = state_dir / "ble-records-meter-1.json"
    assert json.loads(state_file.read_text()) == {"address": ADDRESS, "last_sequence_number": 3}

    meter.store(reading(4))
    restarted, recorder = make_transport(profile, meter.peripheral, Recorder(), state_dir=str(state_dir)), Recorder()
    task = await start(restarted, recorder)
    await recorder.until(lambda: len(recorder.fetches()) == 1)
    assert meter.peripheral.writes[-1] == racp_write(b"\x01\x03\x01\x04\x00")
    assert recorder.payloads == [*records(reading(4)), racp_indication(SUCCESS)]
    await stop(task)
    assert json.loads(state_file.read_text()) == {"address": ADDRESS, "last_sequence_number": 4}


def test_a_cursor_file_of_another_meter_or_unreadable_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cursor.json"
    path.write_text(json.dumps({"address": "00:11:22:33:44:55", "last_sequence_number": 40}))
    assert StoredRecordCursor(ADDRESS, path).next_request() == report_all_records()
    path.write_text("{not json")
    assert StoredRecordCursor(ADDRESS, path).last_seen is None
    path.write_text(json.dumps({"address": ADDRESS, "last_sequence_number": 70000}))
    assert StoredRecordCursor(ADDRESS, path).last_seen is None
    path.write_text(json.dumps({"address": ADDRESS, "last_sequence_number": 40}))
    cursor = StoredRecordCursor(ADDRESS, path)
    assert cursor.next_request() == report_records_from(41) == b"\x01\x03\x01\x29\x00"
    cursor.observe(12)  # an older record does not move it back
    assert cursor.last_seen == 40
    cursor.observe(0xFFFF)  # nothing is "greater" than the last sequence number: ask for everything
    assert cursor.next_request() == REPORT_ALL
    with pytest.raises(ValueError, match="state_dir"):
        make_transport(glucose_profile(), make_meter().peripheral, Recorder(), state_dir=7)


def test_the_virtual_meter_answers_each_request_like_a_meter() -> None:
    meter = make_meter(3, 4, 5, 6)
    first, last = reading(3), reading(6)
    assert meter.handle_racp_write(b"\x01\x05") == [(GLUCOSE_MEASUREMENT_UUID, first), (RACP_UUID, SUCCESS)]
    assert meter.handle_racp_write(b"\x01\x06") == [(GLUCOSE_MEASUREMENT_UUID, last), (RACP_UUID, SUCCESS)]
    assert meter.handle_racp_write(b"\x01\x02\x01\x03\x00") == [(GLUCOSE_MEASUREMENT_UUID, first),
                                                                (RACP_UUID, SUCCESS)]
    assert [value for _, value in meter.handle_racp_write(b"\x01\x04\x01\x04\x00\x05\x00")] == [
        reading(4), reading(5), SUCCESS]
    assert meter.handle_racp_write(b"\x04\x01") == [(RACP_UUID, b"\x05\x00\x04\x00")]  # 4 stored
    assert meter.handle_racp_write(b"\x02\x02\x01\x04\x00") == [(RACP_UUID, b"\x06\x00\x02\x01")]
    assert meter.records == [reading(5), last]
    assert meter.handle_racp_write(b"\x01\x03\x01\x07\x00") == [(RACP_UUID, NO_RECORDS)]
    assert meter.handle_racp_write(ABORT) == [(RACP_UUID, b"\x06\x00\x03\x01")]
    assert meter.handle_racp_write(b"\x01\x09") == [(RACP_UUID, b"\x06\x00\x01\x03")]  # invalid operator
    with pytest.raises(ValueError, match="Glucose Measurement"):
        meter.store(b"\x00\x01")


def test_the_sequence_number_is_read_by_the_decoder_or_from_its_fixed_place() -> None:
    assert glucose_sequence_number(reading(258)) == 258
    # Month 13 makes the decoder reject the record; its sequence number is still bytes 1-2.
    assert glucose_sequence_number(b"\x00\x07\x01\xe8\x07\x0d\x05\x08\x00\x00") == 0x0107
    assert glucose_sequence_number(b"\x00\x07") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=24))
def test_any_bytes_give_a_sequence_number_or_none(payload: bytes) -> None:
    number = glucose_sequence_number(payload)
    assert number is None or 0 <= number <= 0xFFFF


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=8))
def test_any_racp_indication_is_taken_or_ignored_without_an_exception(payload: bytes) -> None:
    async def write(data: bytes) -> None:
        del data

    fetch = RacpFetch(StoredRecordCursor(ADDRESS), write, idle_timeout_s=1)
    fetch.on_indication(payload)  # must not raise
    fetch.on_record(payload)
    assert fetch.records == 1
