"""Heart Rate Measurement (0x2A37) of the Heart Rate Service.

Flags (uint8): bit 0 heart rate is uint16 (else uint8); bits 1-2 sensor contact (0b0x not
supported, 0b10 supported but not detected, 0b11 detected); bit 3 Energy Expended (uint16, kJ)
present; bit 4 RR-Intervals (uint16 each, 1/1024 s) present; bits 5-7 reserved, ignored.
RR-Intervals fill the rest of the payload, so an odd byte left over is an error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.samples import Quality

__all__ = [
    "HeartRateMeasurement",
    "SensorContact",
    "decode_heart_rate_measurement",
    "heart_rate_measurement_decoder",
    "heart_rate_measurement_result",
]

_NAME = "Heart Rate Measurement"

_FLAG_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY_EXPENDED = 0x08
_FLAG_RR_INTERVALS = 0x10


class SensorContact(enum.Enum):
    """What the sensor says about skin contact."""

    NOT_SUPPORTED = "not_supported"
    NOT_DETECTED = "not_detected"
    DETECTED = "detected"


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    ``heart_rate`` in beats/min; ``energy_expended_kj`` in kJ since the last reset (65535 means
    "at least"); ``rr_intervals`` in units of 1/1024 s, oldest first (``None`` when the flag is
    clear, ``()`` when set with none). ``uint16_format`` says how the rate travels on the wire.
    """

    heart_rate: int
    sensor_contact: SensorContact = SensorContact.NOT_SUPPORTED
    energy_expended_kj: int | None = None
    rr_intervals: tuple[int, ...] | None = None
    uint16_format: bool = False


def decode_heart_rate_measurement(payload: bytes) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    uint16_format = bool(flags & _FLAG_UINT16)
    heart_rate = reader.uint(2 if uint16_format else 1, "heart rate")
    if not flags & _FLAG_CONTACT_SUPPORTED:
        contact = SensorContact.NOT_SUPPORTED
    elif flags & _FLAG_CONTACT_DETECTED:
        contact = SensorContact.DETECTED
    else:
        contact = SensorContact.NOT_DETECTED
    energy = reader.uint(2, "energy expended") if flags & _FLAG_ENERGY_EXPENDED else None
    rr: tuple[int, ...] | None = None
    if flags & _FLAG_RR_INTERVALS:
        if reader.remaining % 2:
            raise reader.error(f"RR-intervals need whole uint16 values; {reader.remaining} byte(s) remain")
        rr = tuple(reader.uint(2, f"RR-interval {i}") for i in range(reader.remaining // 2))
    reader.finish()
    return HeartRateMeasurement(heart_rate, contact, energy, rr, uint16_format)


def heart_rate_measurement_result(record: HeartRateMeasurement, context: DecodeContext) -> DecodeResult:
    """Samples ``heart_rate`` (/min) and ``rr_interval`` (ms); contact and energy in ``status``.

    The notification carries no time stamp: the rate is stamped with the receive time and the
    RR-intervals are back-dated so that the newest one ends at the receive time.
    """
    out = ResultBuilder(context)
    now = context.received_ns
    quality = Quality.DEVICE_QUESTIONABLE if record.sensor_contact is SensorContact.NOT_DETECTED else 0
    out.add("heart_rate", now, record.heart_rate, quality)
    if record.rr_intervals:
        end = now
        stamped: list[tuple[int, float]] = []
        for raw in reversed(record.rr_intervals):
            stamped.append((end, raw * 1000.0 / 1024.0))
            end -= raw * 1_000_000_000 // 1024
        for time_ns, ms in reversed(stamped):
            out.add("rr_interval", time_ns, ms, quality)
    out.status["sensor_contact"] = record.sensor_contact.value
    if record.energy_expended_kj is not None:
        out.status["energy_expended_kj"] = record.energy_expended_kj
    return out.build()


def heart_rate_measurement_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.heart_rate_measurement``."""
    return heart_rate_measurement_result(decode_heart_rate_measurement(payload), context)
