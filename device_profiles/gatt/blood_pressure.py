"""Blood Pressure Measurement (0x2A35) of the Blood Pressure Service.

Flags (uint8): bit 0 unit kPa (else mmHg); bit 1 Time Stamp (Date Time, 7 bytes) present; bit 2
Pulse Rate (SFLOAT, /min) present; bit 3 User ID (uint8, 255 = unknown user) present; bit 4
Measurement Status (uint16) present; bits 5-7 reserved, ignored. Then systolic, diastolic and
mean arterial pressure (SFLOAT each) and the optional fields in that order. Nothing may follow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder, flag_names
from device_profiles.gatt._units import kpa_to_mmhg
from device_profiles.gatt.date_time import DateTime
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.samples import Quality

__all__ = [
    "BloodPressureMeasurement",
    "BloodPressureStatus",
    "PressureUnit",
    "UNKNOWN_USER",
    "blood_pressure_measurement_decoder",
    "blood_pressure_measurement_result",
    "decode_blood_pressure_measurement",
]

_NAME = "Blood Pressure Measurement"

UNKNOWN_USER = 0xFF
"""User ID meaning "unknown user"."""

_FLAG_KPA = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_PULSE_RATE = 0x04
_FLAG_USER_ID = 0x08
_FLAG_STATUS = 0x10


class PressureUnit(enum.Enum):
    """Unit of the pressures on the wire."""

    MMHG = "mmHg"
    KPA = "kPa"


class BloodPressureStatus(enum.IntFlag):
    """Measurement Status bits. Bits 3-4 are the pulse rate range: both set is reserved."""

    BODY_MOVEMENT_DETECTED = 0x0001
    CUFF_TOO_LOOSE = 0x0002
    IRREGULAR_PULSE_DETECTED = 0x0004
    PULSE_RATE_EXCEEDS_UPPER_LIMIT = 0x0008
    PULSE_RATE_BELOW_LOWER_LIMIT = 0x0010
    IMPROPER_MEASUREMENT_POSITION = 0x0020


# Conditions that make the pressures themselves doubtful; an irregular pulse is a finding, not a fault.
_QUESTIONABLE = (
    BloodPressureStatus.BODY_MOVEMENT_DETECTED
    | BloodPressureStatus.CUFF_TOO_LOOSE
    | BloodPressureStatus.IMPROPER_MEASUREMENT_POSITION
)


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """One Blood Pressure Measurement indication; pressures in ``unit``, pulse rate in /min."""

    systolic: Measured
    diastolic: Measured
    mean_arterial_pressure: Measured
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: DateTime | None = None
    pulse_rate: Measured | None = None
    user_id: int | None = None
    measurement_status: BloodPressureStatus | None = None


@dataclass(frozen=True, slots=True)
class _Layout:
    pressures: tuple[Measured, Measured, Measured]
    unit: PressureUnit
    timestamp: DateTime | None
    pulse_rate: Measured | None
    user_id: int | None
    status: BloodPressureStatus | None


def _read_layout(payload: bytes, characteristic: str, names: tuple[str, str, str]) -> _Layout:
    # Blood Pressure Measurement and Intermediate Cuff Pressure share this exact layout.
    reader = PayloadReader(payload, characteristic)
    flags = reader.uint(1, "flags")
    pressures = (reader.sfloat(names[0]), reader.sfloat(names[1]), reader.sfloat(names[2]))
    timestamp = reader.date_time("time stamp") if flags & _FLAG_TIME_STAMP else None
    pulse = reader.sfloat("pulse rate") if flags & _FLAG_PULSE_RATE else None
    user_id = reader.uint(1, "user ID") if flags & _FLAG_USER_ID else None
    status = BloodPressureStatus(reader.uint(2, "measurement status")) if flags & _FLAG_STATUS else None
    reader.finish()
    unit = PressureUnit.KPA if flags & _FLAG_KPA else PressureUnit.MMHG
    return _Layout(pressures, unit, timestamp, pulse, user_id, status)


def decode_blood_pressure_measurement(payload: bytes) -> BloodPressureMeasurement:
    """Decode a Blood Pressure Measurement payload; :class:`DecodeError` on malformed bytes."""
    layout = _read_layout(payload, _NAME, ("systolic", "diastolic", "mean arterial pressure"))
    systolic, diastolic, mean = layout.pressures
    return BloodPressureMeasurement(
        systolic, diastolic, mean, layout.unit, layout.timestamp, layout.pulse_rate,
        layout.user_id, layout.status,
    )


def _to_mmhg(value: float | None, unit: PressureUnit) -> float | None:
    if value is None or unit is PressureUnit.MMHG:
        return value
    return kpa_to_mmhg(value)


def _common_status(out: ResultBuilder, user_id: int | None, status: BloodPressureStatus | None) -> int:
    """Put user and status facts in ``out.status``; return the sample quality they imply."""
    if user_id is not None:
        out.status["user_id"] = None if user_id == UNKNOWN_USER else user_id
    if status is None:
        return 0
    out.status["measurement_status"] = flag_names(status)
    return Quality.DEVICE_QUESTIONABLE if status & _QUESTIONABLE else 0


def blood_pressure_measurement_result(
    record: BloodPressureMeasurement, context: DecodeContext
) -> DecodeResult:
    """Samples ``bp_systolic``, ``bp_diastolic``, ``bp_mean`` (mm[Hg]) and ``pulse_rate`` (/min).

    kPa is converted to mm[Hg]. Body movement, a loose cuff or an improper position mark the
    samples ``DEVICE_QUESTIONABLE``; every status condition is listed in ``status``.
    """
    out = ResultBuilder(context)
    time_ns = out.measurement_time(record.timestamp)
    quality = _common_status(out, record.user_id, record.measurement_status)
    for metric, measured in (
        ("bp_systolic", record.systolic),
        ("bp_diastolic", record.diastolic),
        ("bp_mean", record.mean_arterial_pressure),
    ):
        out.add(metric, time_ns, _to_mmhg(out.usable(metric, measured), record.unit), quality)
    out.add("pulse_rate", time_ns, out.usable("pulse_rate", record.pulse_rate), quality)
    return out.build()


def blood_pressure_measurement_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.blood_pressure_measurement``."""
    return blood_pressure_measurement_result(decode_blood_pressure_measurement(payload), context)
