"""Properties of every GATT decoder: any bytes give a result or DecodeError; records round-trip."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles.errors import DecodeError
from device_profiles.gatt import GATT_CHARACTERISTICS, GATT_DECODERS, GATT_SERVICES
from device_profiles.gatt.battery import BatteryLevel, decode_battery_level
from device_profiles.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    PressureUnit,
    decode_blood_pressure_measurement,
)
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.device_information import SystemId, decode_device_information_string, decode_system_id
from device_profiles.gatt.glucose import (
    GlucoseConcentration,
    GlucoseConcentrationUnit,
    GlucoseMeasurement,
    SensorStatusAnnunciation,
    decode_glucose_measurement,
)
from device_profiles.gatt.glucose_context import (
    GlucoseMeasurementContext,
    MedicationUnit,
    decode_glucose_measurement_context,
)
from device_profiles.gatt.heart_rate import HeartRateMeasurement, SensorContact, decode_heart_rate_measurement
from device_profiles.gatt.intermediate_cuff_pressure import (
    IntermediateCuffPressure,
    decode_intermediate_cuff_pressure,
)
from device_profiles.gatt.plx_continuous import PlxContinuousMeasurement, decode_plx_continuous
from device_profiles.gatt.plx_spot_check import PlxSpotCheckMeasurement, decode_plx_spot_check
from device_profiles.gatt.pulse_oximetry import PlxDeviceAndSensorStatus, PlxMeasurementStatus, SpO2PulseRate
from device_profiles.gatt.racp import RacpNumberOfRecords, RacpResponse, decode_racp_response
from device_profiles.gatt.temperature import TemperatureMeasurement, TemperatureUnit, decode_temperature_measurement
from device_profiles.gatt.weight import WeightMeasurement, WeightUnit, decode_weight_measurement
from device_profiles.ieee11073 import Measured, decode_float, decode_sfloat
from device_profiles.registry import DecodeContext, DecodeResult, default_registry
from simulators.devices.gatt_encode import encode_record
from vitals.catalogue import CATALOGUE

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RECORD_DECODERS: dict[str, Callable[[bytes], object]] = {
    "heart_rate": decode_heart_rate_measurement,
    "blood_pressure": decode_blood_pressure_measurement,
    "intermediate_cuff_pressure": decode_intermediate_cuff_pressure,
    "temperature": decode_temperature_measurement,
    "plx_spot_check": decode_plx_spot_check,
    "plx_continuous": decode_plx_continuous,
    "glucose": decode_glucose_measurement,
    "glucose_context": decode_glucose_measurement_context,
    "racp_response": decode_racp_response,
    "weight": decode_weight_measurement,
    "battery": decode_battery_level,
    "system_id": decode_system_id,
    "string": decode_device_information_string,
}

# Flag byte first, then bytes: biases the fuzzing towards payloads that get past the flags.
payloads = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.integers(0, 0x1F), st.binary(min_size=2, max_size=30)).map(lambda t: bytes((t[0],)) + t[1]),
)
contexts = st.builds(
    DecodeContext,
    received_ns=st.integers(0, 2**62),
    utc_offset_s=st.integers(-14 * 3600, 14 * 3600),
)


@pytest.mark.parametrize("name", sorted(GATT_DECODERS))
@FAST
@given(payload=payloads, context=contexts)
def test_registered_decoders_any_bytes(name: str, payload: bytes, context: DecodeContext) -> None:
    try:
        result = GATT_DECODERS[name](payload, context)
    except DecodeError as exc:
        assert str(exc)
        return
    assert isinstance(result, DecodeResult)
    for sample in result.samples:
        assert sample.metric in CATALOGUE


@pytest.mark.parametrize("name", sorted(RECORD_DECODERS))
@FAST
@given(payload=payloads)
def test_record_decoders_any_bytes(name: str, payload: bytes) -> None:
    try:
        record = RECORD_DECODERS[name](payload)
    except DecodeError as exc:
        assert str(exc)
        return
    # whatever decodes, the virtual device can send again, and it decodes to the same record
    assert RECORD_DECODERS[name](encode_record(record)) == record


def test_registered_names_and_uuids() -> None:
    registry = default_registry(load_entry_points=False)
    expected = {
        "gatt.heart_rate_measurement", "gatt.blood_pressure_measurement", "gatt.intermediate_cuff_pressure",
        "gatt.temperature_measurement", "gatt.plx_spot_check", "gatt.plx_continuous",
        "gatt.glucose_measurement", "gatt.weight_measurement", "gatt.battery_level",
    }
    assert expected <= set(GATT_DECODERS)
    assert all(name in registry for name in GATT_DECODERS)
    assert set(GATT_CHARACTERISTICS.values()) == set(GATT_DECODERS)
    assert GATT_CHARACTERISTICS["00002a37-0000-1000-8000-00805f9b34fb"] == "gatt.heart_rate_measurement"
    assert GATT_SERVICES["0000180d-0000-1000-8000-00805f9b34fb"] == "heart_rate"
    assert len(GATT_SERVICES) == 8


@pytest.mark.parametrize(
    "module",
    [
        "device_profiles.ieee11073", "device_profiles.gatt", "device_profiles.gatt.uuids",
        "device_profiles.gatt.decoders", "device_profiles.gatt.date_time", "device_profiles.gatt.heart_rate",
        "device_profiles.gatt.blood_pressure", "device_profiles.gatt.intermediate_cuff_pressure",
        "device_profiles.gatt.temperature", "device_profiles.gatt.pulse_oximetry",
        "device_profiles.gatt.plx_spot_check", "device_profiles.gatt.plx_continuous",
        "device_profiles.gatt.glucose", "device_profiles.gatt.glucose_context", "device_profiles.gatt.racp",
        "device_profiles.gatt.weight",
        "device_profiles.gatt.battery", "device_profiles.gatt.device_information",
        "simulators.devices.gatt_encode",
    ],
)
def test_exported_names_are_honest(module: str) -> None:
    loaded = importlib.import_module(module)
    exported = set(loaded.__all__)
    assert all(hasattr(loaded, name) for name in exported)
    public = {
        name for name, value in vars(loaded).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module
    }
    assert public <= exported, public - exported


# ---- generated records: record -> bytes -> record, and bytes -> record -> the same bytes ----

sfloats = st.integers(0, 0xFFFF).map(decode_sfloat)
floats32 = st.integers(0, 0xFFFFFFFF).map(decode_float)


@st.composite
def date_times(draw: Any) -> DateTime:
    if draw(st.integers(0, 9)) == 0:
        return DateTime(0, 0, 0, 0, 0, 0)
    year = draw(st.integers(1582, 9999))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    return DateTime(year, month, day, draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59)))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def heart_rates(draw: Any) -> HeartRateMeasurement:
    wide = draw(st.booleans())
    return HeartRateMeasurement(
        draw(st.integers(0, 0xFFFF if wide else 0xFF)),
        draw(st.sampled_from(SensorContact)),
        draw(optional(st.integers(0, 0xFFFF))),
        draw(optional(st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple))),
        wide,
    )


bp_status = st.integers(0, 0xFFFF).map(BloodPressureStatus)
blood_pressures = st.builds(
    BloodPressureMeasurement, sfloats, sfloats, sfloats, st.sampled_from(PressureUnit), optional(date_times()),
    optional(sfloats), optional(st.integers(0, 255)), optional(bp_status),
)
cuff_pressures = st.builds(
    IntermediateCuffPressure, sfloats, st.sampled_from(PressureUnit), optional(date_times()),
    optional(sfloats), optional(st.integers(0, 255)), optional(bp_status),
)
temperatures = st.builds(
    TemperatureMeasurement, floats32, st.sampled_from(TemperatureUnit), optional(date_times()),
    optional(st.integers(0, 255)),
)
measurement_status = st.integers(0, 0xFFFF).map(PlxMeasurementStatus)
sensor_status = st.integers(0, 0xFFFFFF).map(PlxDeviceAndSensorStatus)
pairs = st.builds(SpO2PulseRate, sfloats, sfloats)
spot_checks = st.builds(
    PlxSpotCheckMeasurement, sfloats, sfloats, optional(date_times()), optional(measurement_status),
    optional(sensor_status), optional(sfloats), st.booleans(),
)
continuous = st.builds(
    PlxContinuousMeasurement, pairs, optional(pairs), optional(pairs), optional(measurement_status),
    optional(sensor_status), optional(sfloats),
)
glucose = st.builds(
    GlucoseMeasurement, st.integers(0, 0xFFFF), date_times(), optional(st.integers(-32768, 32767)),
    optional(st.builds(
        GlucoseConcentration, sfloats, st.sampled_from(GlucoseConcentrationUnit), st.integers(0, 15),
        st.integers(0, 15),
    )),
    optional(st.integers(0, 0xFFFF).map(SensorStatusAnnunciation)), st.booleans(),
)



@st.composite
def glucose_contexts(draw: Any) -> GlucoseMeasurementContext:
    byte, nibble = st.integers(0, 255), st.integers(0, 15)
    carbohydrate = draw(optional(st.tuples(byte, sfloats)))
    tester_health = draw(optional(st.tuples(nibble, nibble)))
    exercise = draw(optional(st.tuples(st.integers(0, 0xFFFF), byte)))
    medication = draw(optional(st.tuples(byte, sfloats)))
    return GlucoseMeasurementContext(
        draw(st.integers(0, 0xFFFF)),
        *(carbohydrate or (None, None)), draw(optional(byte)), *(tester_health or (None, None)),
        *(exercise or (None, None)), *(medication or (None, None)), draw(st.sampled_from(MedicationUnit)),
        draw(optional(sfloats)), draw(optional(byte)),
    )


@st.composite
def weights(draw: Any) -> WeightMeasurement:
    imperial = draw(st.booleans())
    raw = draw(st.integers(0, 0xFFFF))
    weight = None if raw == 0xFFFF else (raw / 100 if imperial else raw * 5 / 1000)
    bmi = height = None
    if draw(st.booleans()):
        bmi = draw(st.integers(0, 0xFFFF)) / 10
        raw_height = draw(st.integers(0, 0xFFFF))
        height = raw_height / 10 if imperial else raw_height / 1000
    return WeightMeasurement(
        weight, WeightUnit.IMPERIAL if imperial else WeightUnit.SI, draw(optional(date_times())),
        draw(optional(st.integers(0, 255))), bmi, height,
    )


ROUND_TRIPS: dict[str, tuple[st.SearchStrategy[Any], Callable[[bytes], object]]] = {
    "heart_rate": (heart_rates(), decode_heart_rate_measurement),
    "blood_pressure": (blood_pressures, decode_blood_pressure_measurement),
    "intermediate_cuff_pressure": (cuff_pressures, decode_intermediate_cuff_pressure),
    "temperature": (temperatures, decode_temperature_measurement),
    "plx_spot_check": (spot_checks, decode_plx_spot_check),
    "plx_continuous": (continuous, decode_plx_continuous),
    "glucose": (glucose, decode_glucose_measurement),
    "glucose_context": (glucose_contexts(), decode_glucose_measurement_context),
    "racp_response": (
        st.builds(RacpResponse, st.integers(0, 255), st.integers(0, 255))
        | st.builds(RacpNumberOfRecords, st.integers(0, 0xFFFF)),
        decode_racp_response,
    ),
    "weight": (weights(), decode_weight_measurement),
    "battery": (st.builds(BatteryLevel, st.integers(0, 100)), decode_battery_level),
    "system_id": (st.builds(SystemId, st.integers(0, 2**40 - 1), st.integers(0, 2**24 - 1)), decode_system_id),
    "string": (st.text(max_size=20).filter(lambda s: not s.endswith("\x00")), decode_device_information_string),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
@FAST
@given(data=st.data())
def test_encode_decode_round_trip(name: str, data: st.DataObject) -> None:
    strategy, decode = ROUND_TRIPS[name]
    record = data.draw(strategy)
    payload = encode_record(record)
    decoded = decode(payload)
    assert decoded == record
    assert encode_record(decoded) == payload


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
@FAST
@given(data=st.data(), context=contexts)
def test_generated_records_give_results(name: str, data: st.DataObject, context: DecodeContext) -> None:
    strategy, _ = ROUND_TRIPS[name]
    uuid_name = {
        "heart_rate": "gatt.heart_rate_measurement", "blood_pressure": "gatt.blood_pressure_measurement",
        "intermediate_cuff_pressure": "gatt.intermediate_cuff_pressure",
        "temperature": "gatt.temperature_measurement", "plx_spot_check": "gatt.plx_spot_check",
        "plx_continuous": "gatt.plx_continuous", "glucose": "gatt.glucose_measurement",
        "glucose_context": "gatt.glucose_measurement_context",
        "racp_response": "gatt.record_access_control_point", "weight": "gatt.weight_measurement",
        "battery": "gatt.battery_level", "system_id": "gatt.system_id", "string": "gatt.model_number",
    }[name]
    result = GATT_DECODERS[uuid_name](encode_record(data.draw(strategy)), context)
    assert all(isinstance(sample.value, float) and sample.metric in CATALOGUE for sample in result.samples)


def test_measured_keeps_precision_through_the_encoder() -> None:
    record = TemperatureMeasurement(Measured.of(36.6, -3))
    assert encode_record(record) == b"\x00\xf8\x8e\x00\xfd"


def test_encode_record_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        encode_record(3.5)
