"""Bytes a real Bluetooth health device sends, built from the decoders' record types.

Written from the GATT specifications independently of the decoders, so a virtual device and
:mod:`device_profiles.gatt` check each other: ``decode_x(encode_x(record)) == record`` for every
valid record, and ``encode_x(decode_x(payload)) == payload`` for every payload whose reserved
flag bits are clear. SFLOAT/FLOAT numbers reuse the exponent a :class:`Measured` carries, so the
device's own precision survives; without one the shortest exact form is chosen.
``ValueError`` is raised for a record no device could send (a field out of its range).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from device_profiles.gatt.battery import BatteryLevel
from device_profiles.gatt.blood_pressure import BloodPressureMeasurement, PressureUnit
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.device_information import SystemId
from device_profiles.gatt.glucose import GlucoseConcentrationUnit, GlucoseMeasurement
from device_profiles.gatt.glucose_context import GlucoseMeasurementContext, MedicationUnit
from device_profiles.gatt.heart_rate import HeartRateMeasurement, SensorContact
from device_profiles.gatt.intermediate_cuff_pressure import IntermediateCuffPressure
from device_profiles.gatt.plx_continuous import PlxContinuousMeasurement
from device_profiles.gatt.plx_spot_check import PlxSpotCheckMeasurement
from device_profiles.gatt.pulse_oximetry import SpO2PulseRate
from device_profiles.gatt.racp import RacpNumberOfRecords, RacpResponse
from device_profiles.gatt.temperature import TemperatureMeasurement, TemperatureUnit
from device_profiles.gatt.weight import WeightMeasurement, WeightUnit
from device_profiles.ieee11073 import Measured, SpecialValue, encode_float, encode_sfloat

__all__ = [
    "encode_battery_level",
    "encode_blood_pressure_measurement",
    "encode_date_time",
    "encode_device_information_string",
    "encode_glucose_measurement",
    "encode_glucose_measurement_context",
    "encode_heart_rate_measurement",
    "encode_intermediate_cuff_pressure",
    "encode_plx_continuous",
    "encode_plx_spot_check",
    "encode_racp_response",
    "encode_record",
    "encode_system_id",
    "encode_temperature_measurement",
    "encode_weight_measurement",
]


def _uint(value: int, size: int, field: str) -> bytes:
    if not 0 <= value < (1 << (8 * size)):
        raise ValueError(f"{field} {value} does not fit {size} unsigned byte(s)")
    return value.to_bytes(size, "little")


def _sint(value: int, size: int, field: str) -> bytes:
    half = 1 << (8 * size - 1)
    if not -half <= value < half:
        raise ValueError(f"{field} {value} does not fit {size} signed byte(s)")
    return value.to_bytes(size, "little", signed=True)


def _sfloat(measured: Measured) -> bytes:
    value: float | SpecialValue = measured.special if measured.special is not None else measured.value or 0.0
    exponent = measured.exponent if measured.special is None else None
    return encode_sfloat(value, exponent=exponent).to_bytes(2, "little")


def _float32(measured: Measured) -> bytes:
    value: float | SpecialValue = measured.special if measured.special is not None else measured.value or 0.0
    exponent = measured.exponent if measured.special is None else None
    return encode_float(value, exponent=exponent).to_bytes(4, "little")


def _scaled(value: float, step_num: int, step_den: int, field: str) -> int:
    # value = raw * step_num / step_den; recover raw exactly from the decimal value
    raw = round(value * step_den / step_num)
    if abs(raw * step_num / step_den - value) > 1e-9 * max(1.0, abs(value)):
        raise ValueError(f"{field} {value} is not a multiple of {step_num}/{step_den}")
    return raw


def encode_date_time(stamp: DateTime) -> bytes:
    """The 7-byte Date Time field: year uint16, month, day, hours, minutes, seconds."""
    return _uint(stamp.year, 2, "year") + bytes(
        (stamp.month, stamp.day, stamp.hours, stamp.minutes, stamp.seconds)
    )


def encode_heart_rate_measurement(record: HeartRateMeasurement) -> bytes:
    """Heart Rate Measurement (0x2A37) notification payload."""
    flags = 0x01 if record.uint16_format else 0x00
    flags |= {SensorContact.NOT_SUPPORTED: 0x00, SensorContact.NOT_DETECTED: 0x04, SensorContact.DETECTED: 0x06}[
        record.sensor_contact
    ]
    body = _uint(record.heart_rate, 2 if record.uint16_format else 1, "heart rate")
    if record.energy_expended_kj is not None:
        flags |= 0x08
        body += _uint(record.energy_expended_kj, 2, "energy expended")
    if record.rr_intervals is not None:
        flags |= 0x10
        body += b"".join(_uint(rr, 2, "RR-interval") for rr in record.rr_intervals)
    return bytes((flags,)) + body


def _pressure_payload(
    pressures: tuple[Measured, Measured, Measured],
    unit: PressureUnit,
    timestamp: DateTime | None,
    pulse_rate: Measured | None,
    user_id: int | None,
    status: int | None,
) -> bytes:
    flags = 0x01 if unit is PressureUnit.KPA else 0x00
    body = b"".join(_sfloat(p) for p in pressures)
    if timestamp is not None:
        flags |= 0x02
        body += encode_date_time(timestamp)
    if pulse_rate is not None:
        flags |= 0x04
        body += _sfloat(pulse_rate)
    if user_id is not None:
        flags |= 0x08
        body += _uint(user_id, 1, "user ID")
    if status is not None:
        flags |= 0x10
        body += _uint(int(status), 2, "measurement status")
    return bytes((flags,)) + body


def encode_blood_pressure_measurement(record: BloodPressureMeasurement) -> bytes:
    """Blood Pressure Measurement (0x2A35) indication payload."""
    pressures = (record.systolic, record.diastolic, record.mean_arterial_pressure)
    return _pressure_payload(
        pressures, record.unit, record.timestamp, record.pulse_rate, record.user_id, record.measurement_status
    )


def encode_intermediate_cuff_pressure(record: IntermediateCuffPressure) -> bytes:
    """Intermediate Cuff Pressure (0x2A36) payload; the unused diastolic and mean fields are NaN."""
    nan = Measured.missing(SpecialValue.NAN)
    return _pressure_payload(
        (record.cuff_pressure, nan, nan), record.unit, record.timestamp, record.pulse_rate, record.user_id,
        record.measurement_status,
    )


def encode_temperature_measurement(record: TemperatureMeasurement) -> bytes:
    """Temperature Measurement (0x2A1C) indication payload."""
    flags = 0x01 if record.unit is TemperatureUnit.FAHRENHEIT else 0x00
    body = _float32(record.temperature)
    if record.timestamp is not None:
        flags |= 0x02
        body += encode_date_time(record.timestamp)
    if record.temperature_type is not None:
        flags |= 0x04
        body += _uint(record.temperature_type, 1, "temperature type")
    return bytes((flags,)) + body


def _pair(pair: SpO2PulseRate) -> bytes:
    return _sfloat(pair.spo2) + _sfloat(pair.pulse_rate)


def _plx_tail(record: PlxSpotCheckMeasurement | PlxContinuousMeasurement, first_bit: int) -> tuple[int, bytes]:
    # Both PLX characteristics end with measurement status, device and sensor status and pulse
    # amplitude index, flagged by three consecutive bits starting at ``first_bit``.
    flags, body = 0, b""
    if record.measurement_status is not None:
        flags |= first_bit
        body += _uint(int(record.measurement_status), 2, "measurement status")
    if record.device_and_sensor_status is not None:
        flags |= first_bit << 1
        body += _uint(int(record.device_and_sensor_status), 3, "device and sensor status")
    if record.pulse_amplitude_index is not None:
        flags |= first_bit << 2
        body += _sfloat(record.pulse_amplitude_index)
    return flags, body


def encode_plx_spot_check(record: PlxSpotCheckMeasurement) -> bytes:
    """PLX Spot-check Measurement (0x2A5E) indication payload."""
    flags = 0x10 if record.device_clock_not_set else 0x00
    body = _sfloat(record.spo2) + _sfloat(record.pulse_rate)
    if record.timestamp is not None:
        flags |= 0x01
        body += encode_date_time(record.timestamp)
    tail_flags, tail = _plx_tail(record, first_bit=0x02)
    return bytes((flags | tail_flags,)) + body + tail


def encode_plx_continuous(record: PlxContinuousMeasurement) -> bytes:
    """PLX Continuous Measurement (0x2A5F) notification payload."""
    flags = 0
    body = _pair(record.normal)
    if record.fast is not None:
        flags |= 0x01
        body += _pair(record.fast)
    if record.slow is not None:
        flags |= 0x02
        body += _pair(record.slow)
    tail_flags, tail = _plx_tail(record, first_bit=0x04)
    return bytes((flags | tail_flags,)) + body + tail


def encode_glucose_measurement(record: GlucoseMeasurement) -> bytes:
    """Glucose Measurement (0x2A18) notification payload."""
    flags = 0x10 if record.context_follows else 0x00
    body = _uint(record.sequence_number, 2, "sequence number") + encode_date_time(record.base_time)
    if record.time_offset_min is not None:
        flags |= 0x01
        body += _sint(record.time_offset_min, 2, "time offset")
    if record.concentration is not None:
        concentration = record.concentration
        flags |= 0x02
        if concentration.unit is GlucoseConcentrationUnit.MOL_PER_L:
            flags |= 0x04
        if not (0 <= concentration.sample_type <= 15 and 0 <= concentration.sample_location <= 15):
            raise ValueError("glucose sample type and location are 4-bit values")
        body += _sfloat(concentration.value)
        body += bytes((concentration.sample_location << 4 | concentration.sample_type,))
    if record.sensor_status is not None:
        flags |= 0x08
        body += _uint(int(record.sensor_status), 2, "sensor status annunciation")
    return bytes((flags,)) + body


def encode_glucose_measurement_context(record: GlucoseMeasurementContext) -> bytes:
    """Glucose Measurement Context (0x2A34) notification payload (fields in wire order)."""
    flags = 0
    body = _uint(record.sequence_number, 2, "sequence number")
    if record.extended_flags is not None:
        flags |= 0x80
        body += _uint(record.extended_flags, 1, "extended flags")
    if record.carbohydrate_id is not None and record.carbohydrate is not None:
        flags |= 0x01
        body += _uint(record.carbohydrate_id, 1, "carbohydrate id") + _sfloat(record.carbohydrate)
    if record.meal is not None:
        flags |= 0x02
        body += _uint(record.meal, 1, "meal")
    if record.tester is not None and record.health is not None:
        if not (0 <= record.tester <= 15 and 0 <= record.health <= 15):
            raise ValueError("tester and health are 4-bit values")
        flags |= 0x04
        body += bytes((record.health << 4 | record.tester,))
    if record.exercise_duration_s is not None and record.exercise_intensity is not None:
        flags |= 0x08
        body += _uint(record.exercise_duration_s, 2, "exercise duration") + _uint(
            record.exercise_intensity, 1, "exercise intensity")
    if record.medication_id is not None and record.medication is not None:
        flags |= 0x10
        body += _uint(record.medication_id, 1, "medication id") + _sfloat(record.medication)
    if record.medication_unit is MedicationUnit.LITRES:
        flags |= 0x20
    if record.hba1c is not None:
        flags |= 0x40
        body += _sfloat(record.hba1c)
    return bytes((flags,)) + body


def encode_racp_response(record: RacpResponse | RacpNumberOfRecords) -> bytes:
    """Record Access Control Point indication from the meter (op code 6 or 5, operator Null)."""
    if isinstance(record, RacpNumberOfRecords):
        return b"\x05\x00" + _uint(record.count, 2, "number of records")
    return b"\x06\x00" + _uint(record.request_op_code, 1, "request op code") + _uint(
        record.response_code, 1, "response code value"
    )


def encode_weight_measurement(record: WeightMeasurement) -> bytes:
    """Weight Measurement (0x2A9D) indication payload."""
    imperial = record.unit is WeightUnit.IMPERIAL
    flags = 0x01 if imperial else 0x00
    if record.weight is None:
        raw_weight = 0xFFFF
    else:
        raw_weight = _scaled(record.weight, 1, 100, "weight") if imperial else _scaled(
            record.weight, 5, 1000, "weight"
        )
        if raw_weight == 0xFFFF:
            raise ValueError("weight raw value 0xFFFF is reserved for an unsuccessful measurement")
    body = _uint(raw_weight, 2, "weight")
    if record.timestamp is not None:
        flags |= 0x02
        body += encode_date_time(record.timestamp)
    if record.user_id is not None:
        flags |= 0x04
        body += _uint(record.user_id, 1, "user ID")
    if (record.bmi is None) != (record.height is None):
        raise ValueError("BMI and height travel together: give both or neither")
    if record.bmi is not None and record.height is not None:
        flags |= 0x08
        body += _uint(_scaled(record.bmi, 1, 10, "BMI"), 2, "BMI")
        height = _scaled(record.height, 1, 10, "height") if imperial else _scaled(record.height, 1, 1000, "height")
        body += _uint(height, 2, "height")
    return bytes((flags,)) + body


def encode_battery_level(record: BatteryLevel) -> bytes:
    """Battery Level (0x2A19) payload: one byte, 0-100."""
    if not 0 <= record.percent <= 100:
        raise ValueError(f"battery level {record.percent} outside 0..100")
    return bytes((record.percent,))


def encode_device_information_string(text: str) -> bytes:
    """A Device Information string characteristic: UTF-8, no terminator."""
    return text.encode("utf-8")


def encode_system_id(record: SystemId) -> bytes:
    """System ID (0x2A23): 40-bit manufacturer identifier then 24-bit OUI, little-endian."""
    return _uint(record.manufacturer_identifier, 5, "manufacturer identifier") + _uint(
        record.organizationally_unique_identifier, 3, "organizationally unique identifier"
    )


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    HeartRateMeasurement: encode_heart_rate_measurement,
    BloodPressureMeasurement: encode_blood_pressure_measurement,
    IntermediateCuffPressure: encode_intermediate_cuff_pressure,
    TemperatureMeasurement: encode_temperature_measurement,
    PlxSpotCheckMeasurement: encode_plx_spot_check,
    PlxContinuousMeasurement: encode_plx_continuous,
    GlucoseMeasurement: encode_glucose_measurement,
    GlucoseMeasurementContext: encode_glucose_measurement_context,
    RacpResponse: encode_racp_response,
    RacpNumberOfRecords: encode_racp_response,
    WeightMeasurement: encode_weight_measurement,
    BatteryLevel: encode_battery_level,
    SystemId: encode_system_id,
    str: encode_device_information_string,
}


def encode_record(record: object) -> bytes:
    """Encode any record type above (a ``str`` is a Device Information string)."""
    try:
        encoder = _ENCODERS[type(record)]
    except KeyError:
        raise TypeError(f"no GATT encoder for {type(record).__name__}") from None
    return encoder(record)
