"""PLX Spot-check (0x2A5E) and Continuous (0x2A5F) measurements of the Pulse Oximeter Service."""

from __future__ import annotations

import datetime as dt

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.plx_continuous import (
    PlxContinuousMeasurement,
    decode_plx_continuous,
    plx_continuous_decoder,
)
from device_profiles.gatt.plx_spot_check import (
    PlxSpotCheckMeasurement,
    decode_plx_spot_check,
    plx_spot_check_decoder,
)
from device_profiles.gatt.pulse_oximetry import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    SpO2PulseRate,
)
from device_profiles.ieee11073 import Measured, SpecialValue
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import encode_plx_continuous, encode_plx_spot_check
from vitals.samples import Quality, Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED)
STAMP = DateTime(2024, 6, 1, 7, 0, 0)
STAMP_BYTES = b"\xe8\x07\x06\x01\x07\x00\x00"
STAMP_UTC_NS = int(dt.datetime(2024, 6, 1, 7, 0, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
NAN = Measured.missing(SpecialValue.NAN)


def m(value: float) -> Measured:
    return Measured.of(value)


SPOT_VECTORS = [
    (b"\x00\x61\x00\x48\x00", PlxSpotCheckMeasurement(m(97), m(72))),
    (b"\x01\x61\x00\x48\x00" + STAMP_BYTES, PlxSpotCheckMeasurement(m(97), m(72), STAMP)),
    (
        b"\x02\x61\x00\x48\x00\x80\x00",
        PlxSpotCheckMeasurement(m(97), m(72), measurement_status=PlxMeasurementStatus.VALIDATED_DATA),
    ),
    (
        b"\x04\x61\x00\x48\x00\x20\x80\x00",
        PlxSpotCheckMeasurement(
            m(97), m(72),
            device_and_sensor_status=PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
            | PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED,
        ),
    ),
    (b"\x08\x61\x00\x48\x00\x35\xf0", PlxSpotCheckMeasurement(m(97), m(72), pulse_amplitude_index=m(5.3))),
    (b"\x10\x61\x00\x48\x00", PlxSpotCheckMeasurement(m(97), m(72), device_clock_not_set=True)),
    (
        b"\x1f\xff\x07\xff\x07" + STAMP_BYTES + b"\x00\x20\x00\x02\x00\xff\x07",
        PlxSpotCheckMeasurement(
            NAN, NAN, STAMP, PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE,
            PlxDeviceAndSensorStatus.SIGNAL_ANALYSIS_ONGOING, NAN, True,
        ),
    ),
]


@pytest.mark.parametrize(("payload", "record"), SPOT_VECTORS)
def test_spot_check_vectors(payload: bytes, record: PlxSpotCheckMeasurement) -> None:
    assert decode_plx_spot_check(payload) == record
    assert encode_plx_spot_check(decode_plx_spot_check(payload)) == payload
    assert decode_plx_spot_check(encode_plx_spot_check(record)) == record


def test_spot_check_result_full() -> None:
    payload = b"\x0f\x61\x00\x48\x00" + STAMP_BYTES + b"\x80\x00\x00\x02\x00\x35\xf0"
    assert plx_spot_check_decoder(payload, CONTEXT) == DecodeResult(
        samples=(Sample("spo2", STAMP_UTC_NS, 97.0), Sample("pulse_rate", STAMP_UTC_NS, 72.0),
                 Sample("perfusion_index", STAMP_UTC_NS, 5.3)),
        status={
            "measurement_status": ("validated_data",),
            "device_and_sensor_status": ("signal_analysis_ongoing",),
        },
    )


def test_spot_check_clock_not_set_uses_receive_time() -> None:
    payload = b"\x11\x61\x00\x48\x00" + STAMP_BYTES
    assert plx_spot_check_decoder(payload, CONTEXT) == DecodeResult(
        samples=(Sample("spo2", RECEIVED, 97.0), Sample("pulse_rate", RECEIVED, 72.0)),
        status={"device_clock_set": False},
        notes=("device clock is not set; using the receive time",),
    )


def test_spot_check_questionable_signal_flags_samples() -> None:
    q = Quality.DEVICE_QUESTIONABLE
    assert plx_spot_check_decoder(b"\x04\x61\x00\x48\x00\x20\x00\x00", CONTEXT) == DecodeResult(
        samples=(Sample("spo2", RECEIVED, 97.0, q), Sample("pulse_rate", RECEIVED, 72.0, q)),
        status={"device_and_sensor_status": ("low_perfusion_detected",)},
    )
    result = plx_spot_check_decoder(b"\x02\x61\x00\x48\x00\x00\x40", CONTEXT)
    assert [s.quality for s in result.samples] == [q, q]


@pytest.mark.parametrize(
    ("status_bytes", "names"),
    [
        (b"\x00\x04", "data_for_demonstration"),
        (b"\x00\x08", "data_for_testing"),
        (b"\x00\x80", "invalid_measurement_detected"),
    ],
)
def test_spot_check_not_patient_data_gives_no_samples(status_bytes: bytes, names: str) -> None:
    assert plx_spot_check_decoder(b"\x02\x61\x00\x48\x00" + status_bytes, CONTEXT) == DecodeResult(
        status={"measurement_status": (names,)},
        notes=(f"device marked the reading as {names}; no samples made",),
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x61\x00\x48", r"pulse rate needs 2 byte.*byte offset 3"),
        (b"\x04\x61\x00\x48\x00\x20\x00", r"device and sensor status needs 3 byte.*byte offset 5"),
        (b"\x08\x61\x00\x48\x00\x35", r"pulse amplitude index needs 2 byte.*byte offset 5"),
        (b"\x00\x61\x00\x48\x00\x00", r"PLX Spot-check Measurement: 1 unexpected trailing.*byte offset 5"),
    ],
)
def test_spot_check_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_plx_spot_check(payload)


NORMAL = b"\x62\x00\x41\x00"  # 98 % / 65 /min
FAST = b"\x61\x00\x42\x00"
SLOW = b"\x63\x00\x40\x00"
NORMAL_PAIR = SpO2PulseRate(m(98), m(65))

CONTINUOUS_VECTORS = [
    (b"\x00" + NORMAL, PlxContinuousMeasurement(NORMAL_PAIR)),
    (b"\x01" + NORMAL + FAST, PlxContinuousMeasurement(NORMAL_PAIR, fast=SpO2PulseRate(m(97), m(66)))),
    (b"\x02" + NORMAL + SLOW, PlxContinuousMeasurement(NORMAL_PAIR, slow=SpO2PulseRate(m(99), m(64)))),
    (
        b"\x04" + NORMAL + b"\x20\x00",
        PlxContinuousMeasurement(NORMAL_PAIR, measurement_status=PlxMeasurementStatus.MEASUREMENT_ONGOING),
    ),
    (
        b"\x08" + NORMAL + b"\x00\x00\x01",
        PlxContinuousMeasurement(NORMAL_PAIR, device_and_sensor_status=PlxDeviceAndSensorStatus(1 << 16)),
    ),
    (b"\x10" + NORMAL + b"\x35\xf0", PlxContinuousMeasurement(NORMAL_PAIR, pulse_amplitude_index=m(5.3))),
    (
        b"\x1f" + NORMAL + FAST + SLOW + b"\x40\x00\x02\x00\x00\x00\x08",
        PlxContinuousMeasurement(
            NORMAL_PAIR, SpO2PulseRate(m(97), m(66)), SpO2PulseRate(m(99), m(64)),
            PlxMeasurementStatus.EARLY_ESTIMATED_DATA, PlxDeviceAndSensorStatus.EQUIPMENT_MALFUNCTION_DETECTED,
            Measured.missing(SpecialValue.NRES),
        ),
    ),
]


@pytest.mark.parametrize(("payload", "record"), CONTINUOUS_VECTORS)
def test_continuous_vectors(payload: bytes, record: PlxContinuousMeasurement) -> None:
    assert decode_plx_continuous(payload) == record
    assert encode_plx_continuous(decode_plx_continuous(payload)) == payload
    assert decode_plx_continuous(encode_plx_continuous(record)) == record


def test_continuous_result_full() -> None:
    q = Quality.DEVICE_QUESTIONABLE
    payload = b"\x1f" + NORMAL + FAST + SLOW + b"\x40\x00\x02\x00\x00\x00\x08"
    assert plx_continuous_decoder(payload, CONTEXT) == DecodeResult(
        samples=(Sample("spo2", RECEIVED, 98.0, q), Sample("pulse_rate", RECEIVED, 65.0, q)),
        status={
            "measurement_status": ("early_estimated_data",),
            "device_and_sensor_status": ("equipment_malfunction_detected",),
            "spo2_fast": 97.0,
            "pulse_rate_fast": 66.0,
            "spo2_slow": 99.0,
            "pulse_rate_slow": 64.0,
        },
        notes=(
            "pulse_amplitude_index: device sent NRes, not at this resolution (the value did not fit the format)",
        ),
    )


def test_continuous_result_nan_normal_pair() -> None:
    assert plx_continuous_decoder(b"\x00\xff\x07\x41\x00", CONTEXT) == DecodeResult(
        samples=(Sample("pulse_rate", RECEIVED, 65.0),),
        notes=("spo2: device sent NaN, not a number (the device had no valid value)",),
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x62\x00", r"SpO2PR-Normal PR needs 2 byte.*byte offset 3"),
        (b"\x01" + NORMAL + b"\x61\x00", r"SpO2PR-Fast PR needs 2 byte.*byte offset 7"),
        (b"\x02" + NORMAL, r"SpO2PR-Slow SpO2 needs 2 byte.*byte offset 5"),
        (b"\x04" + NORMAL, r"measurement status needs 2 byte.*byte offset 5"),
        (b"\x00" + NORMAL + b"\x00\x00", r"2 unexpected trailing byte.*byte offset 5"),
    ],
)
def test_continuous_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_plx_continuous(payload)
