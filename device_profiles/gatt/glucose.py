"""Glucose Measurement (0x2A18) of the Glucose Service.

Flags (uint8): bit 0 Time Offset (sint16, minutes) present; bit 1 Glucose Concentration (SFLOAT),
Type and Sample Location (uint8: type in the low nibble, location in the high) present; bit 2
concentration unit mol/L (else kg/L); bit 3 Sensor Status Annunciation (uint16) present; bit 4
a Glucose Measurement Context record follows; bits 5-7 reserved, ignored. Always present after
the flags: Sequence Number (uint16) and Base Time (Date Time). Nothing may follow.

Units: kg/L is converted with glucose's molar mass 180.156 g/mol (1 mmol/L = 18.0156 mg/dL;
1 kg/L = 1e5 mg/dL); mol/L is multiplied by 1000.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder, enum_name, flag_names
from device_profiles.gatt._units import glucose_kg_per_l_to_mmol_per_l, glucose_mol_per_l_to_mmol_per_l
from device_profiles.gatt.date_time import DateTime
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.samples import Quality

__all__ = [
    "GlucoseConcentration",
    "GlucoseConcentrationUnit",
    "GlucoseMeasurement",
    "GlucoseSampleLocation",
    "GlucoseType",
    "SensorStatusAnnunciation",
    "decode_glucose_measurement",
    "glucose_measurement_decoder",
    "glucose_measurement_result",
]

_NAME = "Glucose Measurement"

_FLAG_TIME_OFFSET = 0x01
_FLAG_CONCENTRATION = 0x02
_FLAG_MOL_PER_L = 0x04
_FLAG_SENSOR_STATUS = 0x08
_FLAG_CONTEXT_FOLLOWS = 0x10


class GlucoseConcentrationUnit(enum.Enum):
    """Unit of the concentration on the wire."""

    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


class GlucoseType(enum.IntEnum):
    """Sample type (low nibble; 0 and 11-15 reserved)."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class GlucoseSampleLocation(enum.IntEnum):
    """Sample location (high nibble; 0 and 5-14 reserved)."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class SensorStatusAnnunciation(enum.IntFlag):
    """Sensor Status Annunciation (uint16); bits 12-15 reserved."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS = 1 << 5
    RESULT_LOWER_THAN_DEVICE_CAN_PROCESS = 1 << 6
    SENSOR_TEMPERATURE_TOO_HIGH = 1 << 7
    SENSOR_TEMPERATURE_TOO_LOW = 1 << 8
    SENSOR_READ_INTERRUPTED = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


# A low battery or a time fault says nothing about the concentration itself.
_QUESTIONABLE = SensorStatusAnnunciation(0x0FFF) & ~(
    SensorStatusAnnunciation.DEVICE_BATTERY_LOW | SensorStatusAnnunciation.TIME_FAULT
)


@dataclass(frozen=True, slots=True)
class GlucoseConcentration:
    """Concentration in ``unit`` with the raw sample type and location nibbles (0-15 each)."""

    value: Measured
    unit: GlucoseConcentrationUnit = GlucoseConcentrationUnit.KG_PER_L
    sample_type: int = GlucoseType.CAPILLARY_WHOLE_BLOOD
    sample_location: int = GlucoseSampleLocation.FINGER


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """One stored glucose record; the measurement time is ``base_time`` + ``time_offset_min``."""

    sequence_number: int
    base_time: DateTime
    time_offset_min: int | None = None
    concentration: GlucoseConcentration | None = None
    sensor_status: SensorStatusAnnunciation | None = None
    context_follows: bool = False


def decode_glucose_measurement(payload: bytes) -> GlucoseMeasurement:
    """Decode a Glucose Measurement payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    sequence = reader.uint(2, "sequence number")
    base_time = reader.date_time("base time")
    offset = reader.sint(2, "time offset") if flags & _FLAG_TIME_OFFSET else None
    concentration = None
    if flags & _FLAG_CONCENTRATION:
        value = reader.sfloat("glucose concentration")
        nibbles = reader.uint(1, "type-sample location")
        unit = GlucoseConcentrationUnit.KG_PER_L
        if flags & _FLAG_MOL_PER_L:
            unit = GlucoseConcentrationUnit.MOL_PER_L
        concentration = GlucoseConcentration(value, unit, nibbles & 0x0F, nibbles >> 4)
    status = (
        SensorStatusAnnunciation(reader.uint(2, "sensor status annunciation"))
        if flags & _FLAG_SENSOR_STATUS
        else None
    )
    reader.finish()
    follows = bool(flags & _FLAG_CONTEXT_FOLLOWS)
    return GlucoseMeasurement(sequence, base_time, offset, concentration, status, follows)


def _to_mmol_per_l(concentration: GlucoseConcentration, value: float) -> float:
    if concentration.unit is GlucoseConcentrationUnit.MOL_PER_L:
        return glucose_mol_per_l_to_mmol_per_l(value, concentration.value.exponent)
    return glucose_kg_per_l_to_mmol_per_l(value)


def glucose_measurement_result(record: GlucoseMeasurement, context: DecodeContext) -> DecodeResult:
    """Sample ``blood_glucose`` (mmol/L) at base time + offset; record facts in ``status``.

    Control-solution readings give no sample (they are meter checks, not the patient). Sensor
    annunciations other than a low battery or time fault mark the sample ``DEVICE_QUESTIONABLE``.
    """
    out = ResultBuilder(context)
    time_ns = out.measurement_time(record.base_time, offset_minutes=record.time_offset_min or 0)
    out.status["sequence_number"] = record.sequence_number
    if record.context_follows:
        out.status["context_follows"] = True
    quality = 0
    if record.sensor_status is not None:
        out.status["sensor_status"] = flag_names(record.sensor_status)
        if record.sensor_status & _QUESTIONABLE:
            quality = Quality.DEVICE_QUESTIONABLE
    concentration = record.concentration
    if concentration is None:
        return out.build()
    out.status["glucose_type"] = enum_name(GlucoseType, concentration.sample_type)
    out.status["sample_location"] = enum_name(GlucoseSampleLocation, concentration.sample_location)
    value = out.usable("blood_glucose", concentration.value)
    if (
        concentration.sample_type == GlucoseType.CONTROL_SOLUTION
        or concentration.sample_location == GlucoseSampleLocation.CONTROL_SOLUTION
    ):
        out.notes.append("control solution reading; no sample made")
    elif value is not None:
        out.add("blood_glucose", time_ns, _to_mmol_per_l(concentration, value), quality)
    return out.build()


def glucose_measurement_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.glucose_measurement``."""
    return glucose_measurement_result(decode_glucose_measurement(payload), context)
