"""Temperature Measurement (0x2A1C): Celsius/Fahrenheit, time stamp, type, FLOAT specials."""

from __future__ import annotations

import datetime as dt

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.temperature import (
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    decode_temperature_measurement,
    temperature_measurement_decoder,
)
from device_profiles.ieee11073 import Measured, SpecialValue
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import encode_temperature_measurement
from vitals.samples import Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED, utc_offset_s=-5 * 3600)
STAMP = DateTime(2023, 12, 31, 23, 59, 59)
STAMP_BYTES = b"\xe7\x07\x0c\x1f\x17\x3b\x3b"
# 23:59:59 at UTC-5 is 04:59:59 UTC the next day
STAMP_UTC_NS = int(dt.datetime(2024, 1, 1, 4, 59, 59, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
C366 = b"\x6e\x01\x00\xff"  # 366e-1

VECTORS = [
    (b"\x00" + C366, TemperatureMeasurement(Measured.of(36.6))),
    (b"\x01\xda\x03\x00\xff", TemperatureMeasurement(Measured.of(98.6), TemperatureUnit.FAHRENHEIT)),
    (b"\x02" + C366 + STAMP_BYTES, TemperatureMeasurement(Measured.of(36.6), timestamp=STAMP)),
    (b"\x04" + C366 + b"\x02", TemperatureMeasurement(Measured.of(36.6), temperature_type=TemperatureType.BODY)),
    (
        b"\x07\xda\x03\x00\xff" + STAMP_BYTES + b"\x09",
        TemperatureMeasurement(Measured.of(98.6), TemperatureUnit.FAHRENHEIT, STAMP, 9),
    ),
    (b"\x00\xff\xff\x7f\x00", TemperatureMeasurement(Measured.missing(SpecialValue.NAN))),
    (b"\x00\x00\x00\x80\x00", TemperatureMeasurement(Measured.missing(SpecialValue.NRES))),
    (b"\x00\xfe\xff\x7f\x00", TemperatureMeasurement(Measured.missing(SpecialValue.POSITIVE_INFINITY))),
    (b"\x00\x02\x00\x80\x00", TemperatureMeasurement(Measured.missing(SpecialValue.NEGATIVE_INFINITY))),
    (b"\x00\x01\x00\x80\x00", TemperatureMeasurement(Measured.missing(SpecialValue.RESERVED))),
]


@pytest.mark.parametrize(("payload", "record"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, record: TemperatureMeasurement) -> None:
    assert decode_temperature_measurement(payload) == record
    assert encode_temperature_measurement(decode_temperature_measurement(payload)) == payload
    assert decode_temperature_measurement(encode_temperature_measurement(record)) == record


def test_result_celsius_with_stamp_and_type() -> None:
    assert temperature_measurement_decoder(b"\x06" + C366 + STAMP_BYTES + b"\x03", CONTEXT) == DecodeResult(
        samples=(Sample("body_temperature", STAMP_UTC_NS, 36.6),),
        status={"temperature_type": "ear"},
    )


def test_result_fahrenheit_converted() -> None:
    assert temperature_measurement_decoder(b"\x01\xda\x03\x00\xff", CONTEXT) == DecodeResult(
        samples=(Sample("body_temperature", RECEIVED, 37.0),)
    )


def test_result_reserved_type_and_special_value() -> None:
    assert temperature_measurement_decoder(b"\x04\xfe\xff\x7f\x00\x00", CONTEXT) == DecodeResult(
        status={"temperature_type": "reserved_0"},
        notes=("body_temperature: device sent +INF, positive infinity (above the device's measuring range)",),
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x6e\x01\x00", r"temperature needs 4 byte.*byte offset 1"),
        (b"\x02" + C366 + b"\xe7\x07", r"time stamp needs 7 byte.*byte offset 5"),
        (b"\x04" + C366, r"temperature type needs 1 byte.*byte offset 5"),
        (b"\x00" + C366 + b"\x02", r"Temperature Measurement: 1 unexpected trailing byte.*byte offset 5"),
        (b"\x02" + C366 + b"\xe7\x07\x0c\x1f\x17\x3c\x00", r"minutes 60 outside 0\.\.59 \(byte offset 10\)"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_temperature_measurement(payload)
