"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36)."""

from __future__ import annotations

import datetime as dt

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    PressureUnit,
    blood_pressure_measurement_decoder,
    decode_blood_pressure_measurement,
)
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.intermediate_cuff_pressure import (
    IntermediateCuffPressure,
    decode_intermediate_cuff_pressure,
    intermediate_cuff_pressure_decoder,
)
from device_profiles.ieee11073 import Measured, SpecialValue
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import (
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
)
from vitals.samples import Quality, Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED, utc_offset_s=3600)
STAMP = DateTime(2024, 3, 5, 14, 30, 15)
STAMP_BYTES = b"\xe8\x07\x03\x05\x0e\x1e\x0f"
# 14:30:15 local at UTC+1 is 13:30:15 UTC
STAMP_UTC_NS = int(dt.datetime(2024, 3, 5, 13, 30, 15, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
PRESSURES_MMHG = b"\x78\x00\x50\x00\x5d\x00"  # 120 / 80 / 93


def m(value: float) -> Measured:
    return Measured.of(value)


VECTORS = [
    (b"\x00" + PRESSURES_MMHG, BloodPressureMeasurement(m(120), m(80), m(93))),
    (
        b"\x01\xa0\xf0\x6b\xf0\x7d\xf0",
        BloodPressureMeasurement(m(16.0), m(10.7), m(12.5), PressureUnit.KPA),
    ),
    (b"\x02" + PRESSURES_MMHG + STAMP_BYTES, BloodPressureMeasurement(m(120), m(80), m(93), timestamp=STAMP)),
    (b"\x04" + PRESSURES_MMHG + b"\x48\x00", BloodPressureMeasurement(m(120), m(80), m(93), pulse_rate=m(72))),
    (b"\x08" + PRESSURES_MMHG + b"\x02", BloodPressureMeasurement(m(120), m(80), m(93), user_id=2)),
    (
        b"\x10" + PRESSURES_MMHG + b"\x05\x00",
        BloodPressureMeasurement(
            m(120), m(80), m(93),
            measurement_status=BloodPressureStatus.BODY_MOVEMENT_DETECTED
            | BloodPressureStatus.IRREGULAR_PULSE_DETECTED,
        ),
    ),
    (
        b"\x1f\xa0\xf0\x6b\xf0\x7d\xf0" + STAMP_BYTES + b"\x48\x00\xff\x3e\x00",
        BloodPressureMeasurement(
            m(16.0), m(10.7), m(12.5), PressureUnit.KPA, STAMP, m(72), 255,
            BloodPressureStatus.CUFF_TOO_LOOSE
            | BloodPressureStatus.IRREGULAR_PULSE_DETECTED
            | BloodPressureStatus.PULSE_RATE_EXCEEDS_UPPER_LIMIT
            | BloodPressureStatus.PULSE_RATE_BELOW_LOWER_LIMIT
            | BloodPressureStatus.IMPROPER_MEASUREMENT_POSITION,
        ),
    ),
    (
        b"\x04\xff\x07\x00\x08\xfe\x07\x02\x08",
        BloodPressureMeasurement(
            Measured.missing(SpecialValue.NAN),
            Measured.missing(SpecialValue.NRES),
            Measured.missing(SpecialValue.POSITIVE_INFINITY),
            pulse_rate=Measured.missing(SpecialValue.NEGATIVE_INFINITY),
        ),
    ),
]


@pytest.mark.parametrize(("payload", "record"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, record: BloodPressureMeasurement) -> None:
    assert decode_blood_pressure_measurement(payload) == record
    # the decoded record keeps the wire precision, so the virtual device sends the same bytes
    assert encode_blood_pressure_measurement(decode_blood_pressure_measurement(payload)) == payload
    assert decode_blood_pressure_measurement(encode_blood_pressure_measurement(record)) == record


def test_reserved_flag_bits_and_status_bits_are_kept_apart() -> None:
    record = decode_blood_pressure_measurement(b"\xf0" + PRESSURES_MMHG + b"\xc0\xff")
    assert record.measurement_status is not None
    assert int(record.measurement_status) == 0xFFC0  # reserved status bits kept, flag bits ignored


def test_result_mmhg_with_time_stamp_and_status() -> None:
    payload = b"\x1e" + PRESSURES_MMHG + STAMP_BYTES + b"\x48\x00\x01\x05\x00"
    q = Quality.DEVICE_QUESTIONABLE  # body movement
    assert blood_pressure_measurement_decoder(payload, CONTEXT) == DecodeResult(
        samples=(
            Sample("bp_systolic", STAMP_UTC_NS, 120.0, q),
            Sample("bp_diastolic", STAMP_UTC_NS, 80.0, q),
            Sample("bp_mean", STAMP_UTC_NS, 93.0, q),
            Sample("pulse_rate", STAMP_UTC_NS, 72.0, q),
        ),
        status={"user_id": 1, "measurement_status": ("body_movement_detected", "irregular_pulse_detected")},
    )


def test_result_kpa_converted_to_mmhg() -> None:
    assert blood_pressure_measurement_decoder(b"\x09\xa0\xf0\x6b\xf0\x7d\xf0\xff", CONTEXT) == DecodeResult(
        samples=(
            Sample("bp_systolic", RECEIVED, 120.01),
            Sample("bp_diastolic", RECEIVED, 80.26),
            Sample("bp_mean", RECEIVED, 93.76),
        ),
        status={"user_id": None},
    )


def test_result_irregular_pulse_alone_is_not_questionable() -> None:
    result = blood_pressure_measurement_decoder(b"\x10" + PRESSURES_MMHG + b"\x04\x00", CONTEXT)
    assert {s.quality for s in result.samples} == {0}


def test_result_special_values_become_notes() -> None:
    result = blood_pressure_measurement_decoder(b"\x04\xff\x07\x00\x08\x01\x08\x02\x08", CONTEXT)
    assert result == DecodeResult(
        notes=(
            "bp_systolic: device sent NaN, not a number (the device had no valid value)",
            "bp_diastolic: device sent NRes, not at this resolution (the value did not fit the format)",
            "bp_mean: device sent reserved, a reserved special value",
            "pulse_rate: device sent -INF, negative infinity (below the device's measuring range)",
        )
    )


def test_result_unknown_time_stamp_falls_back_to_receive_time() -> None:
    result = blood_pressure_measurement_decoder(b"\x02" + PRESSURES_MMHG + b"\x00" * 7, CONTEXT)
    assert result == DecodeResult(
        samples=(
            Sample("bp_systolic", RECEIVED, 120.0),
            Sample("bp_diastolic", RECEIVED, 80.0),
            Sample("bp_mean", RECEIVED, 93.0),
        ),
        notes=("device time stamp not known; using the receive time",),
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", r"flags needs 1 byte.*byte offset 0"),
        (b"\x00\x78", r"systolic needs 2 byte.*byte offset 1"),
        (b"\x00\x78\x00\x50\x00", r"mean arterial pressure needs 2 byte.*byte offset 5"),
        (b"\x02" + PRESSURES_MMHG + STAMP_BYTES[:6], r"time stamp needs 7 byte.*byte offset 7"),
        (b"\x04" + PRESSURES_MMHG + b"\x48", r"pulse rate needs 2 byte.*byte offset 7"),
        (b"\x08" + PRESSURES_MMHG, r"user ID needs 1 byte.*byte offset 7"),
        (b"\x10" + PRESSURES_MMHG + b"\x01", r"measurement status needs 2 byte.*byte offset 7"),
        (b"\x00" + PRESSURES_MMHG + b"\x00", r"1 unexpected trailing byte.*byte offset 7"),
        (b"\x02" + PRESSURES_MMHG + b"\xe8\x07\x0d\x05\x0e\x1e\x0f", r"month 13 outside 0\.\.12 \(byte offset 9\)"),
        (b"\x02" + PRESSURES_MMHG + b"\xe8\x07\x02\x1e\x0e\x1e\x0f", r"day 30 does not exist in 2024-02"),
        (b"\x02" + PRESSURES_MMHG + b"\xe8\x07\x03\x05\x18\x00\x00", r"hours 24 outside 0\.\.23 \(byte offset 11\)"),
        (b"\x02" + PRESSURES_MMHG + b"\x10\x00\x03\x05\x00\x00\x00", r"year 16 outside 1582\.\.9999"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_blood_pressure_measurement(payload)


ICP_VECTORS = [
    (b"\x00\x55\x00\xff\x07\xff\x07", IntermediateCuffPressure(m(85))),
    (
        b"\x1f\x55\xf0\xff\x07\xff\x07" + STAMP_BYTES + b"\x46\x00\x01\x01\x00",
        IntermediateCuffPressure(
            Measured.of(8.5), PressureUnit.KPA, STAMP, m(70), 1, BloodPressureStatus.BODY_MOVEMENT_DETECTED
        ),
    ),
]


@pytest.mark.parametrize(("payload", "record"), ICP_VECTORS)
def test_icp_vectors(payload: bytes, record: IntermediateCuffPressure) -> None:
    assert decode_intermediate_cuff_pressure(payload) == record
    assert encode_intermediate_cuff_pressure(decode_intermediate_cuff_pressure(payload)) == payload
    assert decode_intermediate_cuff_pressure(encode_intermediate_cuff_pressure(record)) == record


def test_icp_unused_fields_are_ignored() -> None:
    assert decode_intermediate_cuff_pressure(b"\x00\x55\x00\x00\x00\x00\x00") == IntermediateCuffPressure(m(85))


def test_icp_result() -> None:
    assert intermediate_cuff_pressure_decoder(b"\x04\x55\x00\xff\x07\xff\x07\x46\x00", CONTEXT) == DecodeResult(
        samples=(Sample("pulse_rate", RECEIVED, 70.0),),
        status={"cuff_pressure_mmhg": 85.0},
    )
    kpa = intermediate_cuff_pressure_decoder(b"\x01\x55\xf0\xff\x07\xff\x07", CONTEXT)
    assert kpa == DecodeResult(status={"cuff_pressure_mmhg": 63.76})


def test_icp_malformed() -> None:
    with pytest.raises(DecodeError, match=r"current cuff pressure needs 2 byte.*byte offset 1"):
        decode_intermediate_cuff_pressure(b"\x00")
    with pytest.raises(DecodeError, match=r"Intermediate Cuff Pressure: 2 unexpected trailing"):
        decode_intermediate_cuff_pressure(b"\x00\x55\x00\xff\x07\xff\x07\x00\x00")


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        (b"\xea\x07\x01\x0f\x0c\x00\x00", dt.datetime(2026, 1, 15, 11, 0, tzinfo=dt.UTC)),  # winter: UTC+1
        (b"\xea\x07\x07\x0f\x0c\x00\x00", dt.datetime(2026, 7, 15, 10, 0, tzinfo=dt.UTC)),  # summer: UTC+2
        (b"\xea\x07\x03\x1d\x01\x30\x00", dt.datetime(2026, 3, 29, 0, 48, tzinfo=dt.UTC)),  # just before the change
    ],
)
def test_a_time_zone_reads_local_stamps_with_the_daylight_saving_of_their_day(stamp: bytes, utc: dt.datetime) -> None:
    from zoneinfo import ZoneInfo

    # Received in high summer (offset +2), whatever the stamp: the zone, not the receive-time offset, decides.
    context = DecodeContext(received_ns=int(dt.datetime(2026, 8, 1, tzinfo=dt.UTC).timestamp()) * 10**9,
                            utc_offset_s=7200, timezone=ZoneInfo("Europe/Berlin"))
    result = blood_pressure_measurement_decoder(b"\x02" + PRESSURES_MMHG + stamp, context)
    assert {s.time_ns for s in result.samples} == {int(utc.timestamp()) * 10**9}
