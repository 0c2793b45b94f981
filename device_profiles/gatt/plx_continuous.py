"""PLX Continuous Measurement (0x2A5F) of the Pulse Oximeter Service.

Flags (uint8): bit 0 SpO2PR-Fast present; bit 1 SpO2PR-Slow present; bit 2 Measurement Status
(uint16) present; bit 3 Device and Sensor Status (uint24) present; bit 4 Pulse Amplitude Index
(SFLOAT, %) present; bits 5-7 reserved, ignored. Then SpO2PR-Normal (two SFLOATs) and the optional
fields in that order. Nothing may follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder
from device_profiles.gatt.pulse_oximetry import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    SpO2PulseRate,
    _plx_common,
)
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "PlxContinuousMeasurement",
    "decode_plx_continuous",
    "plx_continuous_decoder",
    "plx_continuous_result",
]

_NAME = "PLX Continuous Measurement"

_FLAG_FAST = 0x01
_FLAG_SLOW = 0x02
_FLAG_MEASUREMENT_STATUS = 0x04
_FLAG_SENSOR_STATUS = 0x08
_FLAG_PULSE_AMPLITUDE_INDEX = 0x10


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    """One continuous reading: normal, fast and slow averaged SpO2 (%) / pulse rate (/min) pairs."""

    normal: SpO2PulseRate
    fast: SpO2PulseRate | None = None
    slow: SpO2PulseRate | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: Measured | None = None


def _pair(reader: PayloadReader, which: str) -> SpO2PulseRate:
    return SpO2PulseRate(reader.sfloat(f"SpO2PR-{which} SpO2"), reader.sfloat(f"SpO2PR-{which} PR"))


def decode_plx_continuous(payload: bytes) -> PlxContinuousMeasurement:
    """Decode a PLX Continuous Measurement payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    normal = _pair(reader, "Normal")
    fast = _pair(reader, "Fast") if flags & _FLAG_FAST else None
    slow = _pair(reader, "Slow") if flags & _FLAG_SLOW else None
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
    return PlxContinuousMeasurement(normal, fast, slow, status, sensor, pai)


def plx_continuous_result(record: PlxContinuousMeasurement, context: DecodeContext) -> DecodeResult:
    """Samples ``spo2`` (%), ``pulse_rate`` (/min) from the normal pair and ``perfusion_index`` (%, the
    pulse amplitude index when sent), at the receive time.

    The fast and slow pairs are other averages of the same quantities, so they go to ``status``
    (``spo2_fast``, ``pulse_rate_fast``, ``spo2_slow``, ``pulse_rate_slow``) rather than
    duplicate samples. Demonstration, testing, unavailable or invalid readings give no samples.
    """
    out = ResultBuilder(context)
    quality = _plx_common(out, record.measurement_status, record.device_and_sensor_status)
    # The Pulse Amplitude Index is the perfusion index: pulsatile over non-pulsatile signal, in %.
    perfusion = out.usable("pulse_amplitude_index", record.pulse_amplitude_index)
    for suffix, pair in (("fast", record.fast), ("slow", record.slow)):
        if pair is None:
            continue
        for metric, measured in (("spo2", pair.spo2), ("pulse_rate", pair.pulse_rate)):
            value = out.usable(f"{metric}_{suffix}", measured)
            if value is not None:
                out.status[f"{metric}_{suffix}"] = value
    spo2 = out.usable("spo2", record.normal.spo2)
    pulse = out.usable("pulse_rate", record.normal.pulse_rate)
    if quality is not None:
        out.add("spo2", context.received_ns, spo2, quality)
        out.add("pulse_rate", context.received_ns, pulse, quality)
        out.add("perfusion_index", context.received_ns, perfusion, quality)
    return out.build()


def plx_continuous_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.plx_continuous``."""
    return plx_continuous_result(decode_plx_continuous(payload), context)
