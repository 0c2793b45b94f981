"""Weight Measurement (0x2A9D): SI and imperial units, time stamp, user, BMI and height."""

from __future__ import annotations

import datetime as dt

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.weight import (
    WeightMeasurement,
    WeightUnit,
    decode_weight_measurement,
    weight_measurement_decoder,
)
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import encode_weight_measurement
from vitals.samples import Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED)
STAMP = DateTime(2024, 2, 29, 6, 45, 0)
STAMP_BYTES = b"\xe8\x07\x02\x1d\x06\x2d\x00"
STAMP_UTC_NS = int(dt.datetime(2024, 2, 29, 6, 45, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000

VECTORS = [
    (b"\x00\x14\x37", WeightMeasurement(70.5)),
    (b"\x01\xb4\x3c", WeightMeasurement(155.4, WeightUnit.IMPERIAL)),
    (b"\x02\x14\x37" + STAMP_BYTES, WeightMeasurement(70.5, timestamp=STAMP)),
    (b"\x04\x14\x37\x03", WeightMeasurement(70.5, user_id=3)),
    (b"\x08\x14\x37\xe6\x00\xd6\x06", WeightMeasurement(70.5, bmi=23.0, height=1.75)),
    (
        b"\x0f\xb4\x3c" + STAMP_BYTES + b"\xff\xe6\x00\xb1\x02",
        WeightMeasurement(155.4, WeightUnit.IMPERIAL, STAMP, 255, 23.0, 68.9),
    ),
    (b"\x00\xff\xff", WeightMeasurement(None)),
    (b"\x00\x00\x00", WeightMeasurement(0.0)),
    (b"\x00\xfe\xff", WeightMeasurement(327.67)),
]


@pytest.mark.parametrize(("payload", "record"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, record: WeightMeasurement) -> None:
    assert decode_weight_measurement(payload) == record
    assert encode_weight_measurement(record) == payload


def test_result_si_full() -> None:
    assert weight_measurement_decoder(b"\x0e\x14\x37" + STAMP_BYTES + b"\x03\xe6\x00\xd6\x06", CONTEXT) == (
        DecodeResult(
            samples=(Sample("body_weight", STAMP_UTC_NS, 70.5),),
            status={"user_id": 3, "bmi": 23.0, "height_m": 1.75},
        )
    )


def test_result_imperial_converted() -> None:
    assert weight_measurement_decoder(b"\x0d\xb4\x3c\xff\xe6\x00\xb1\x02", CONTEXT) == DecodeResult(
        samples=(Sample("body_weight", RECEIVED, 70.4883),),
        status={"user_id": None, "bmi": 23.0, "height_m": 1.7501},
    )


def test_result_unsuccessful() -> None:
    assert weight_measurement_decoder(b"\x00\xff\xff", CONTEXT) == DecodeResult(
        notes=("body_weight: device reported the measurement as unsuccessful",)
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x14", r"weight needs 2 byte.*byte offset 1"),
        (b"\x04\x14\x37", r"user ID needs 1 byte.*byte offset 3"),
        (b"\x08\x14\x37\xe6\x00", r"height needs 2 byte.*byte offset 5"),
        (b"\x00\x14\x37\x00", r"Weight Measurement: 1 unexpected trailing byte.*byte offset 3"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_weight_measurement(payload)


@pytest.mark.parametrize(
    "record",
    [
        WeightMeasurement(70.501),
        WeightMeasurement(70.5, bmi=23.0),
        WeightMeasurement(327.675),  # raw 0xFFFF is the "unsuccessful" marker
        WeightMeasurement(400.0),
    ],
)
def test_encoder_rejects_impossible_records(record: WeightMeasurement) -> None:
    with pytest.raises(ValueError):
        encode_weight_measurement(record)
