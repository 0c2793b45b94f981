"""Glucose Measurement (0x2A18) and the Record Access Control Point (0x2A52)."""

from __future__ import annotations

import datetime as dt

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.glucose import (
    GlucoseConcentration,
    GlucoseConcentrationUnit,
    GlucoseMeasurement,
    GlucoseSampleLocation,
    GlucoseType,
    SensorStatusAnnunciation,
    decode_glucose_measurement,
    glucose_measurement_decoder,
)
from device_profiles.gatt.racp import (
    RacpNumberOfRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    abort_operation,
    decode_racp_request,
    decode_racp_response,
    delete_all_records,
    encode_racp_request,
    racp_decoder,
    report_all_records,
    report_first_record,
    report_last_record,
    report_number_of_records,
    report_records_from,
)
from device_profiles.ieee11073 import Measured, SpecialValue
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import encode_glucose_measurement, encode_racp_response
from vitals.samples import Quality, Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED, utc_offset_s=7200)
BASE = DateTime(2024, 3, 5, 8, 0, 0)
BASE_BYTES = b"\xe8\x07\x03\x05\x08\x00\x00"
BASE_UTC_NS = int(dt.datetime(2024, 3, 5, 6, 0, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
HEAD = b"\x01\x00" + BASE_BYTES  # sequence number 1, base time
KG_PER_L = b"\x63\xb0"  # 99e-5 kg/L = 99 mg/dL
MOL_PER_L = b"\x37\xc0"  # 55e-4 mol/L = 5.5 mmol/L


def conc(value: float, unit: GlucoseConcentrationUnit = GlucoseConcentrationUnit.KG_PER_L) -> GlucoseConcentration:
    kind, location = GlucoseType.CAPILLARY_WHOLE_BLOOD, GlucoseSampleLocation.FINGER
    return GlucoseConcentration(Measured.of(value), unit, kind, location)


VECTORS = [
    (b"\x00" + HEAD, GlucoseMeasurement(1, BASE)),
    (b"\x01" + HEAD + b"\xe2\xff", GlucoseMeasurement(1, BASE, time_offset_min=-30)),
    (b"\x02" + HEAD + KG_PER_L + b"\x11", GlucoseMeasurement(1, BASE, concentration=conc(0.00099))),
    (
        b"\x06" + HEAD + MOL_PER_L + b"\xf9",
        GlucoseMeasurement(1, BASE, concentration=GlucoseConcentration(
            Measured.of(0.0055), GlucoseConcentrationUnit.MOL_PER_L, GlucoseType.INTERSTITIAL_FLUID,
            GlucoseSampleLocation.NOT_AVAILABLE,
        )),
    ),
    (
        b"\x08" + HEAD + b"\x01\x08",
        GlucoseMeasurement(
            1, BASE,
            sensor_status=SensorStatusAnnunciation.DEVICE_BATTERY_LOW | SensorStatusAnnunciation.TIME_FAULT,
        ),
    ),
    (b"\x10" + HEAD, GlucoseMeasurement(1, BASE, context_follows=True)),
    (
        b"\x1f\xff\xff" + BASE_BYTES + b"\x3c\x00" + MOL_PER_L + b"\x12\x20\x00",
        GlucoseMeasurement(
            0xFFFF, BASE, 60, GlucoseConcentration(Measured.of(0.0055), GlucoseConcentrationUnit.MOL_PER_L, 2, 1),
            SensorStatusAnnunciation.RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS, True,
        ),
    ),
]


@pytest.mark.parametrize(("payload", "record"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, record: GlucoseMeasurement) -> None:
    assert decode_glucose_measurement(payload) == record
    assert encode_glucose_measurement(decode_glucose_measurement(payload)) == payload
    assert decode_glucose_measurement(encode_glucose_measurement(record)) == record


def test_result_kg_per_l_converted_with_offset() -> None:
    assert glucose_measurement_decoder(b"\x03" + HEAD + b"\xe2\xff" + KG_PER_L + b"\x11", CONTEXT) == DecodeResult(
        samples=(Sample("blood_glucose", BASE_UTC_NS - 30 * 60 * 1_000_000_000, 5.495),),
        status={"sequence_number": 1, "glucose_type": "capillary_whole_blood", "sample_location": "finger"},
    )


def test_result_mol_per_l_keeps_precision_and_flags_questionable() -> None:
    payload = b"\x1e" + HEAD + MOL_PER_L + b"\x22\x20\x00"
    assert glucose_measurement_decoder(payload, CONTEXT) == DecodeResult(
        samples=(Sample("blood_glucose", BASE_UTC_NS, 5.5, Quality.DEVICE_QUESTIONABLE),),
        status={
            "sequence_number": 1,
            "context_follows": True,
            "sensor_status": ("result_higher_than_device_can_process",),
            "glucose_type": "capillary_plasma",
            "sample_location": "alternate_site_test",
        },
    )


def test_result_low_battery_is_not_questionable() -> None:
    result = glucose_measurement_decoder(b"\x0e" + HEAD + MOL_PER_L + b"\x11\x01\x00", CONTEXT)
    assert result.samples == (Sample("blood_glucose", BASE_UTC_NS, 5.5),)


@pytest.mark.parametrize("nibbles", [b"\x1a", b"\x41"])
def test_result_control_solution_gives_no_sample(nibbles: bytes) -> None:
    result = glucose_measurement_decoder(b"\x06" + HEAD + MOL_PER_L + nibbles, CONTEXT)
    assert result.samples == ()
    assert result.notes == ("control solution reading; no sample made",)


def test_result_special_value_and_unknown_base_time() -> None:
    payload = b"\x02\x07\x00" + b"\x00" * 7 + b"\x00\x08\x00"
    assert glucose_measurement_decoder(payload, CONTEXT) == DecodeResult(
        status={"sequence_number": 7, "glucose_type": "reserved_0", "sample_location": "reserved_0"},
        notes=(
            "device time stamp not known; using the receive time",
            "blood_glucose: device sent NRes, not at this resolution (the value did not fit the format)",
        ),
    )
    record = decode_glucose_measurement(payload)
    assert record.concentration is not None
    assert record.concentration.value == Measured.missing(SpecialValue.NRES)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x01", r"sequence number needs 2 byte.*byte offset 1"),
        (b"\x00\x01\x00\xe8\x07", r"base time needs 7 byte.*byte offset 3"),
        (b"\x01" + HEAD + b"\xe2", r"time offset needs 2 byte.*byte offset 10"),
        (b"\x02" + HEAD + KG_PER_L, r"type-sample location needs 1 byte.*byte offset 12"),
        (b"\x08" + HEAD + b"\x01", r"sensor status annunciation needs 2 byte.*byte offset 10"),
        (b"\x00" + HEAD + b"\x00", r"Glucose Measurement: 1 unexpected trailing byte.*byte offset 10"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_glucose_measurement(payload)


def test_partly_unknown_base_time_decodes_and_falls_back() -> None:
    payload = b"\x06\x01\x00\xe8\x07\x00\x05\x08\x00\x00" + MOL_PER_L + b"\x11"
    assert decode_glucose_measurement(payload).base_time == DateTime(2024, 0, 5, 8, 0, 0)
    assert glucose_measurement_decoder(payload, CONTEXT).samples == (Sample("blood_glucose", RECEIVED, 5.5),)


def test_racp_request_builders() -> None:
    assert report_all_records() == b"\x01\x01"
    assert report_first_record() == b"\x01\x05"
    assert report_last_record() == b"\x01\x06"
    assert report_records_from(5) == b"\x01\x03\x01\x05\x00"
    assert report_number_of_records() == b"\x04\x01"
    assert report_number_of_records(300) == b"\x04\x03\x01\x2c\x01"
    assert delete_all_records() == b"\x02\x01"
    assert abort_operation() == b"\x03\x00"
    within = RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE_OF, 2, 9)
    assert encode_racp_request(within) == b"\x01\x04\x01\x02\x00\x09\x00"
    at_most = RacpRequest(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.LESS_THAN_OR_EQUAL_TO, high=3)
    assert encode_racp_request(at_most) == b"\x02\x02\x01\x03\x00"


@pytest.mark.parametrize(
    "payload",
    [b"\x01\x01", b"\x01\x05", b"\x01\x06", b"\x01\x03\x01\x05\x00", b"\x04\x01", b"\x04\x03\x01\x2c\x01",
     b"\x02\x01", b"\x03\x00", b"\x01\x04\x01\x02\x00\x09\x00", b"\x02\x02\x01\x03\x00"],
)
def test_racp_requests_round_trip(payload: bytes) -> None:
    assert encode_racp_request(decode_racp_request(payload)) == payload


@pytest.mark.parametrize(
    "request_",
    [
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.NULL),
        RacpRequest(RacpOpCode.ABORT_OPERATION, RacpOperator.ALL_RECORDS),
        RacpRequest(RacpOpCode.RESPONSE_CODE, RacpOperator.NULL),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL_TO),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE_OF, 9, 2),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL_TO, 70000),
    ],
)
def test_racp_impossible_requests(request_: RacpRequest) -> None:
    with pytest.raises(ValueError):
        encode_racp_request(request_)


@pytest.mark.parametrize(
    ("payload", "record"),
    [
        (b"\x06\x00\x01\x01", RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, RacpResponseCode.SUCCESS)),
        (b"\x06\x00\x01\x06", RacpResponse(1, 6)),
        (b"\x06\x00\x04\x0a", RacpResponse(4, 10)),  # unknown response code kept raw
        (b"\x05\x00\x0a\x00", RacpNumberOfRecords(10)),
        (b"\x05\x00\xff\xff", RacpNumberOfRecords(65535)),
    ],
)
def test_racp_responses(payload: bytes, record: RacpResponse | RacpNumberOfRecords) -> None:
    assert decode_racp_response(payload) == record
    assert encode_racp_response(record) == payload


def test_racp_results() -> None:
    assert racp_decoder(b"\x05\x00\x0a\x00", CONTEXT) == DecodeResult(status={"stored_records": 10})
    assert racp_decoder(b"\x06\x00\x01\x06", CONTEXT) == DecodeResult(
        status={"racp_request": "report_stored_records", "racp_response": "no_records_found"}
    )
    assert decode_racp_response(b"\x06\x00\x01\x01") == RacpResponse(1, 1)
    assert RacpResponse(1, 1).success and not RacpResponse(1, 6).success


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x05\x00\x0a", r"number of records needs 2 byte.*byte offset 2"),
        (b"\x07\x00", r"op code 0x07 is not a response \(byte offset 0\)"),
        (b"\x06\x01\x01\x01", r"Null operator \(byte offset 1\)"),
        (b"\x06\x00\x01\x01\x00", r"1 unexpected trailing byte.*byte offset 4"),
        (b"\x06", r"operator needs 1 byte.*byte offset 1"),
    ],
)
def test_racp_malformed_responses(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_racp_response(payload)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x09\x01", r"op code 0x09 is not defined \(byte offset 0\)"),
        (b"\x01\x07", r"operator 0x07 is not defined \(byte offset 1\)"),
        (b"\x05\x00", r"not a request"),
        (b"\x01\x00", r"operator NULL does not go with REPORT_STORED_RECORDS"),
        (b"\x01\x03\x02\x05\x00", r"sequence number filter type .*byte offset 2"),
        (b"\x01\x04\x01\x02\x00", r"upper sequence number needs 2 byte"),
    ],
)
def test_racp_malformed_requests(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_racp_request(payload)
