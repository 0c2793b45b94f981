"""Heart Rate Measurement (0x2A37): every flag bit, byte for byte, whole records and results."""

from __future__ import annotations

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.heart_rate import (
    HeartRateMeasurement,
    SensorContact,
    decode_heart_rate_measurement,
    heart_rate_measurement_decoder,
)
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import encode_heart_rate_measurement
from vitals.samples import Quality, Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED, utc_offset_s=3600)

VECTORS = [
    (b"\x00\x48", HeartRateMeasurement(72)),
    (b"\x01\x2c\x01", HeartRateMeasurement(300, uint16_format=True)),
    (b"\x01\x48\x00", HeartRateMeasurement(72, uint16_format=True)),
    (b"\x04\x48", HeartRateMeasurement(72, SensorContact.NOT_DETECTED)),
    (b"\x06\x48", HeartRateMeasurement(72, SensorContact.DETECTED)),
    (b"\x08\x48\x10\x27", HeartRateMeasurement(72, energy_expended_kj=10000)),
    (b"\x10\x48\x00\x04\x00\x02", HeartRateMeasurement(72, rr_intervals=(1024, 512))),
    (b"\x10\x48", HeartRateMeasurement(72, rr_intervals=())),
    (
        b"\x1f\x2c\x01\xe8\x03\x00\x04",
        HeartRateMeasurement(300, SensorContact.DETECTED, 1000, (1024,), uint16_format=True),
    ),
]


@pytest.mark.parametrize(("payload", "record"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, record: HeartRateMeasurement) -> None:
    assert decode_heart_rate_measurement(payload) == record
    assert encode_heart_rate_measurement(record) == payload


def test_contact_bit_without_support_bit_means_not_supported() -> None:
    assert decode_heart_rate_measurement(b"\x02\x48") == HeartRateMeasurement(72, SensorContact.NOT_SUPPORTED)


def test_reserved_flag_bits_are_ignored() -> None:
    assert decode_heart_rate_measurement(b"\xe0\x48") == HeartRateMeasurement(72)


def test_result_with_rr_intervals_back_dated() -> None:
    result = heart_rate_measurement_decoder(b"\x16\x48\x00\x04\x00\x02", CONTEXT)
    assert result == DecodeResult(
        samples=(
            Sample("heart_rate", RECEIVED, 72.0),
            Sample("rr_interval", RECEIVED - 500_000_000, 1000.0),
            Sample("rr_interval", RECEIVED, 500.0),
        ),
        status={"sensor_contact": "detected"},
    )


def test_result_no_contact_is_questionable_and_energy_in_status() -> None:
    result = heart_rate_measurement_decoder(b"\x0c\x00\xff\xff", CONTEXT)
    assert result == DecodeResult(
        samples=(Sample("heart_rate", RECEIVED, 0.0, Quality.DEVICE_QUESTIONABLE),),
        status={"sensor_contact": "not_detected", "energy_expended_kj": 65535},
    )


def test_rr_interval_units() -> None:
    # 1/1024 s units: 1 -> 0.9765625 ms exactly
    result = heart_rate_measurement_decoder(b"\x10\x3c\x01\x00", CONTEXT)
    assert result.samples[1] == Sample("rr_interval", RECEIVED, 0.9765625)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", r"flags needs 1 byte\(s\) but only 0 remain .*byte offset 0"),
        (b"\x00", r"heart rate needs 1 byte.*byte offset 1"),
        (b"\x01\x48", r"heart rate needs 2 byte.*byte offset 1"),
        (b"\x08\x48\x10", r"energy expended needs 2 byte.*byte offset 2"),
        (b"\x10\x48\x00", r"RR-intervals need whole uint16 values; 1 byte\(s\) remain \(byte offset 2\)"),
        (b"\x00\x48\x00", r"1 unexpected trailing byte\(s\).*byte offset 2"),
        (b"\x08\x48\x10\x27\x00", r"trailing.*byte offset 4"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_heart_rate_measurement(payload)


def test_encoder_rejects_impossible_records() -> None:
    with pytest.raises(ValueError):
        encode_heart_rate_measurement(HeartRateMeasurement(300))  # needs the uint16 format
    with pytest.raises(ValueError):
        encode_heart_rate_measurement(HeartRateMeasurement(72, rr_intervals=(70000,)))
