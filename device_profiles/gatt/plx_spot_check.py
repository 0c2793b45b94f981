"""PLX Spot-check Measurement (0x2A5E) of the Pulse Oximeter Service.

Flags (uint8): bit 0 Timestamp present; bit 1 Measurement Status (uint16) present; bit 2 Device
and Sensor Status (uint24) present; bit 3 Pulse Amplitude Index (SFLOAT, %) present; bit 4 device
clock is not set; bits 5-7 reserved, ignored. Then SpO2 and PR (SFLOAT each) and the optional
fields in that order. Nothing may follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.pulse_oximetry import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    _plx_common,
)
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "PlxSpotCheckMeasurement",
    "decode_plx_spot_check",
    "plx_spot_check_decoder",
    "plx_spot_check_result",
]

_NAME = "PLX Spot-check Measurement"

_FLAG_TIME_STAMP = 0x01
_FLAG_MEASUREMENT_STATUS = 0x02
_FLAG_SENSOR_STATUS = 0x04
_FLAG_PULSE_AMPLITUDE_INDEX = 0x08
_FLAG_CLOCK_NOT_SET = 0x10


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    """One spot-check reading: SpO2 in %, pulse rate in /min, pulse amplitude index in %."""

    spo2: Measured
    pulse_rate: Measured
    timestamp: DateTime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: Measured | None = None
    device_clock_not_set: bool = False


def decode_plx_spot_check(payload: bytes) -> PlxSpotCheckMeasurement:
    """Decode a PLX Spot-check Measurement payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    spo2 = reader.sfloat("SpO2")
    pulse = reader.sfloat("pulse rate")
    timestamp = reader.date_time("timestamp") if flags & _FLAG_TIME_STAMP else None
    status = None
    if flags & _FLAG_MEASUREMENT_STATUS:
        status = PlxMeasurementStatus(reader.uint(2, "measurement status"))
    sensor = (
        PlxDeviceAndSensorStatus(reader.uint(3, "device and sensor status"))
        if flags & _FLAG_SENSOR_STATUS
        else None
    )
    pai = reader.sfloat("pulse amplitude index") if flags & _FLAG_PULSE_AMPLITUDE_INDEX else None
    reader.finish()
    clock_not_set = bool(flags & _FLAG_CLOCK_NOT_SET)
    return PlxSpotCheckMeasurement(spo2, pulse, timestamp, status, sensor, pai, clock_not_set)


def plx_spot_check_result(record: PlxSpotCheckMeasurement, context: DecodeContext) -> DecodeResult:
    """Samples ``spo2`` (%), ``pulse_rate`` (/min) and ``perfusion_index`` (%, the pulse amplitude
    index when sent); status words in ``status``.

    A timestamp from a device whose clock is not set is not trusted (the receive time is used).
    Demonstration, testing, unavailable or invalid readings give no samples (see ``notes``).
    """
    out = ResultBuilder(context)
    time_ns = out.measurement_time(record.timestamp, trusted=not record.device_clock_not_set)
    if record.device_clock_not_set:
        out.status["device_clock_set"] = False
    quality = _plx_common(out, record.measurement_status, record.device_and_sensor_status)
    # The Pulse Amplitude Index is the perfusion index: pulsatile over non-pulsatile signal, in %.
    perfusion = out.usable("pulse_amplitude_index", record.pulse_amplitude_index)
    spo2 = out.usable("spo2", record.spo2)
    pulse = out.usable("pulse_rate", record.pulse_rate)
    if quality is not None:
        out.add("spo2", time_ns, spo2, quality)
        out.add("pulse_rate", time_ns, pulse, quality)
        out.add("perfusion_index", time_ns, perfusion, quality)
    return out.build()


def plx_spot_check_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.plx_spot_check``."""
    return plx_spot_check_result(decode_plx_spot_check(payload), context)
