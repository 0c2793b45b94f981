"""Glucose Measurement Context (0x2A34): byte vectors written from the field table, and the join by sequence number.

Each vector is laid out field by field from the GATT Specification Supplement (flags, sequence
number, then the optional fields in their order); the decoder must give the whole record, and
the virtual meter's encoder must give back the same bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.errors import DecodeError
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.glucose import GlucoseMeasurement
from device_profiles.gatt.glucose_context import (
    CarbohydrateId,
    GlucoseMeasurementContext,
    GlucoseRecord,
    GlucoseRecordJoiner,
    Health,
    Meal,
    MedicationId,
    MedicationUnit,
    decode_glucose_measurement_context,
    glucose_measurement_context_decoder,
)
from device_profiles.gatt.glucose_context import (
    Tester as WhoTested,
)
from device_profiles.ieee11073 import Measured, SpecialValue
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import encode_glucose_measurement_context

CONTEXT = DecodeContext(received_ns=1_700_000_000_000_000_000)

VECTORS: list[tuple[bytes, GlucoseMeasurementContext]] = [
    # flags 0x02: meal only; sequence 5; meal 2 = postprandial
    (bytes.fromhex("02 0500 02"), GlucoseMeasurementContext(5, meal=Meal.POSTPRANDIAL)),
    # flags 0x00: nothing but the sequence number (a meter that has no context to give)
    (bytes.fromhex("00 FFFF"), GlucoseMeasurementContext(0xFFFF)),
    # flags 0x80: extended flags (reserved, 0x00) right after the sequence number
    (bytes.fromhex("80 0100 00"), GlucoseMeasurementContext(1, extended_flags=0)),
    # flags 0x01: carbohydrate id 4 = snack, SFLOAT 0xD00F = 15e-3 kg
    (bytes.fromhex("01 0900 04 0FD0"),
     GlucoseMeasurementContext(9, CarbohydrateId.SNACK, Measured(0.015, exponent=-3))),
    # flags 0x04: tester-health 0x21 = health 2 (major issues) in the high nibble, tester 1 (self) low
    (bytes.fromhex("04 0A00 21"),
     GlucoseMeasurementContext(10, tester=WhoTested.SELF, health=Health.MAJOR_HEALTH_ISSUES)),
    # flags 0x08: exercise 0xFFFF s (overrun) at 80 %
    (bytes.fromhex("08 0B00 FFFF 50"), GlucoseMeasurementContext(11, exercise_duration_s=0xFFFF,
                                                                 exercise_intensity=80)),
    # flags 0x10: medication id 4 = long-acting insulin, SFLOAT 0xA0C8 = 200e-6 kg = 200 mg (kilograms)
    (bytes.fromhex("10 0C00 04 C8A0"),
     GlucoseMeasurementContext(12, medication_id=MedicationId.LONG_ACTING_INSULIN,
                               medication=Measured(0.0002, exponent=-6))),
    # flags 0x40: HbA1c SFLOAT 0xF048 = 72e-1 %
    (bytes.fromhex("40 0D00 48F0"), GlucoseMeasurementContext(13, hba1c=Measured(7.2, exponent=-1))),
    # flags 0xFF: every field, medication in litres; extended flags 0x00
    (bytes.fromhex("FF 0201 00 01 3CD0 01 51 0807 32 01 04D0 41F0"),
     GlucoseMeasurementContext(258, CarbohydrateId.BREAKFAST, Measured(0.06, exponent=-3), Meal.PREPRANDIAL,
                               WhoTested.SELF, Health.NO_HEALTH_ISSUES, 1800, 50, MedicationId.RAPID_ACTING_INSULIN,
                               Measured(0.004, exponent=-3), MedicationUnit.LITRES, Measured(6.5, exponent=-1), 0)),
]


@pytest.mark.parametrize(("payload", "record"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, record: GlucoseMeasurementContext) -> None:
    assert decode_glucose_measurement_context(payload) == record
    assert encode_glucose_measurement_context(record) == payload


def test_result_names_ids_and_converts_amounts() -> None:
    result = glucose_measurement_context_decoder(VECTORS[-1][0], CONTEXT)
    assert result == DecodeResult(status={"glucose_context": {
        "sequence_number": 258, "carbohydrate": "breakfast", "carbohydrate_g": 60.0, "meal": "preprandial",
        "tester": "self", "health": "no_health_issues", "exercise_duration_s": 1800,
        "exercise_intensity_percent": 50, "medication": "rapid_acting_insulin", "medication_ml": 4.0,
        "hba1c_percent": 6.5,
    }})
    assert glucose_measurement_context_decoder(bytes.fromhex("10 0C00 04 C8A0"), CONTEXT).status == {
        "glucose_context": {"sequence_number": 12, "medication": "long_acting_insulin", "medication_mg": 200.0}}
    assert glucose_measurement_context_decoder(bytes.fromhex("08 0B00 FFFF 50"), CONTEXT).status == {
        "glucose_context": {"sequence_number": 11, "exercise_overrun": True, "exercise_intensity_percent": 80}}


def test_result_reserved_values_and_special_amounts() -> None:
    # meal 9 and carbohydrate id 0 are reserved; the carbohydrate amount is NaN (SFLOAT 0x07FF)
    result = glucose_measurement_context_decoder(bytes.fromhex("03 0700 00 FF07 09"), CONTEXT)
    assert result.status == {"glucose_context": {"sequence_number": 7, "carbohydrate": "reserved_0",
                                                 "meal": "reserved_9"}}
    assert len(result.notes) == 1 and result.notes[0].startswith("carbohydrate: device sent")
    assert decode_glucose_measurement_context(bytes.fromhex("03 0700 00 FF07 09")).carbohydrate == Measured.missing(
        SpecialValue.NAN)


@pytest.mark.parametrize(("payload", "message"), [
    (b"", r"flags needs 1 byte\(s\) but only 0 remain of 0"),
    (bytes.fromhex("02 05"), r"sequence number needs 2 byte\(s\)"),
    (bytes.fromhex("01 0900 04 0F"), r"carbohydrate needs 2 byte\(s\) but only 1 remain .* \(byte offset 4\)"),
    (bytes.fromhex("80 0100"), r"extended flags needs 1 byte"),
    (bytes.fromhex("08 0B00 FFFF"), r"exercise intensity needs 1 byte"),
    (bytes.fromhex("02 0500 02 00"), r"1 unexpected trailing byte\(s\) after the last field \(byte offset 4\)"),
])
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=rf"^Glucose Measurement Context: {message}"):
        decode_glucose_measurement_context(payload)


def test_halves_of_a_pair_cannot_be_built_alone() -> None:
    with pytest.raises(ValueError, match="carbohydrate_id and carbohydrate"):
        GlucoseMeasurementContext(1, carbohydrate_id=1)


@given(st.binary(max_size=24))
def test_any_bytes_decode_or_raise_one_clear_error(payload: bytes) -> None:
    try:
        record = decode_glucose_measurement_context(payload)
    except DecodeError as exc:
        assert str(exc).startswith("Glucose Measurement Context: ") and "\n" not in str(exc)
        return
    assert encode_glucose_measurement_context(record) == payload


# -- joining measurements and contexts ---------------------------------------------------------------
def measurement(sequence_number: int, *, follows: bool) -> GlucoseMeasurement:
    return GlucoseMeasurement(sequence_number, DateTime(2024, 3, 5, 8, 0, 0), context_follows=follows)


def context(sequence_number: int) -> GlucoseMeasurementContext:
    return GlucoseMeasurementContext(sequence_number, meal=Meal.FASTING)


def test_a_measurement_waits_for_its_context_and_one_without_is_complete_at_once() -> None:
    joiner = GlucoseRecordJoiner()
    assert joiner.add_measurement(measurement(1, follows=False)) == [GlucoseRecord(measurement(1, follows=False))]
    assert joiner.add_measurement(measurement(2, follows=True)) == []
    assert joiner.add_context(context(2)) == [GlucoseRecord(measurement(2, follows=True), context(2))]


def test_a_context_that_never_comes_releases_the_measurement_at_the_next_one() -> None:
    joiner = GlucoseRecordJoiner()
    assert joiner.add_measurement(measurement(3, follows=True)) == []
    assert joiner.add_measurement(measurement(4, follows=False)) == [
        GlucoseRecord(measurement(3, follows=True)), GlucoseRecord(measurement(4, follows=False))]
    assert joiner.add_measurement(measurement(5, follows=True)) == []
    assert joiner.flush() == [GlucoseRecord(measurement(5, follows=True))]


def test_a_context_for_another_record_is_kept_bounded_and_counted() -> None:
    joiner = GlucoseRecordJoiner(max_waiting=2)
    for number in (10, 11, 12):
        assert joiner.add_context(context(number)) == []
    assert joiner.orphan_contexts == 1  # 10 dropped: only two wait
    assert joiner.add_measurement(measurement(12, follows=True)) == [
        GlucoseRecord(measurement(12, follows=True), context(12))]
    assert joiner.add_measurement(measurement(10, follows=True)) == []  # its context is gone
    assert joiner.flush() == [GlucoseRecord(measurement(10, follows=True))]
    assert joiner.orphan_contexts == 2  # 11 never met its measurement


@given(st.lists(st.tuples(st.integers(0, 20), st.booleans(), st.booleans()), max_size=40))
def test_every_measurement_comes_out_once_with_only_its_own_context(
        events: list[tuple[int, bool, bool]]) -> None:
    joiner = GlucoseRecordJoiner(max_waiting=4)
    fed: list[GlucoseMeasurement] = []
    out: list[GlucoseRecord] = []
    for number, is_context, follows in events:
        if is_context:
            out += joiner.add_context(context(number))
        else:
            fed.append(measurement(number, follows=follows))
            out += joiner.add_measurement(fed[-1])
    out += joiner.flush()
    assert sorted(repr(r.measurement) for r in out) == sorted(repr(m) for m in fed)
    assert all(r.context is None or r.context.sequence_number == r.measurement.sequence_number for r in out)
    assert all(r.context is None or r.measurement.context_follows for r in out)
