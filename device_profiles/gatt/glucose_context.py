"""Glucose Measurement Context (0x2A34) of the Glucose Service, and its join to the measurement.

A meter sends a context record right after a Glucose Measurement whose flags say one follows
(bit 4), with the same Sequence Number: what the patient ate, the meal, who tested, their health,
exercise, medication and HbA1c.

Flags (uint8): bit 0 Carbohydrate ID (uint8) and Carbohydrate (SFLOAT, kilograms) present; bit 1
Meal (uint8) present; bit 2 Tester-Health (uint8: tester in the low nibble, health in the high)
present; bit 3 Exercise Duration (uint16, seconds; 65535 means overrun) and Exercise Intensity
(uint8, percent) present; bit 4 Medication ID (uint8) and Medication (SFLOAT) present; bit 5
medication in litres (else kilograms); bit 6 HbA1c (SFLOAT, percent) present; bit 7 Extended
Flags (uint8, reserved for future use) present. Order on the wire: Flags, Sequence Number
(uint16), Extended Flags, Carbohydrate ID, Carbohydrate, Meal, Tester-Health, Exercise Duration,
Exercise Intensity, Medication ID, Medication, HbA1c. Nothing may follow.

None of these is a catalogue vital: the decoder reports the record in ``status`` (``glucose_context``,
with the sequence number it belongs to; amounts in grams, milligrams or millilitres), which the
gateway sends as a device event. :class:`GlucoseRecordJoiner` pairs measurements with their
contexts by sequence number where both are wanted together.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder, enum_name
from device_profiles.gatt.glucose import GlucoseMeasurement
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "EXERCISE_DURATION_OVERRUN",
    "CarbohydrateId",
    "GlucoseMeasurementContext",
    "GlucoseRecord",
    "GlucoseRecordJoiner",
    "Health",
    "Meal",
    "MedicationId",
    "MedicationUnit",
    "Tester",
    "decode_glucose_measurement_context",
    "glucose_context_details",
    "glucose_measurement_context_decoder",
]

_NAME = "Glucose Measurement Context"

_FLAG_CARBOHYDRATE = 0x01
_FLAG_MEAL = 0x02
_FLAG_TESTER_HEALTH = 0x04
_FLAG_EXERCISE = 0x08
_FLAG_MEDICATION = 0x10
_FLAG_MEDICATION_LITRES = 0x20
_FLAG_HBA1C = 0x40
_FLAG_EXTENDED = 0x80

EXERCISE_DURATION_OVERRUN = 0xFFFF
"""Exercise Duration value meaning "longer than the field can hold"."""


class CarbohydrateId(enum.IntEnum):
    """What the carbohydrate was taken with (0 and 8-255 reserved)."""

    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(enum.IntEnum):
    """When the sample was taken relative to a meal (0 and 6-255 reserved)."""

    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


class Tester(enum.IntEnum):
    """Who took the sample (low nibble; 0 and 4-14 reserved)."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(enum.IntEnum):
    """The patient's state at the test (high nibble; 0 and 6-14 reserved)."""

    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(enum.IntEnum):
    """The medication taken (0 and 6-255 reserved)."""

    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


class MedicationUnit(enum.Enum):
    """Unit of the Medication amount on the wire (flag bit 5)."""

    KILOGRAMS = "kg"
    LITRES = "L"


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """One context record, fields as on the wire (raw ids, so reserved values survive a round trip).

    ``carbohydrate`` is in kilograms; ``medication`` in ``medication_unit``; ``hba1c`` in percent;
    ``exercise_duration_s`` in seconds (:data:`EXERCISE_DURATION_OVERRUN` for "longer") and
    ``exercise_intensity`` in percent. ``tester`` and ``health`` are nibbles (0-15).
    """

    sequence_number: int
    carbohydrate_id: int | None = None
    carbohydrate: Measured | None = None
    meal: int | None = None
    tester: int | None = None
    health: int | None = None
    exercise_duration_s: int | None = None
    exercise_intensity: int | None = None
    medication_id: int | None = None
    medication: Measured | None = None
    medication_unit: MedicationUnit = MedicationUnit.KILOGRAMS
    hba1c: Measured | None = None
    extended_flags: int | None = None

    def __post_init__(self) -> None:
        # The wire carries these fields in pairs: one without the other has no encoding.
        pairs = (("carbohydrate_id", "carbohydrate"), ("tester", "health"),
                 ("exercise_duration_s", "exercise_intensity"), ("medication_id", "medication"))
        for first, second in pairs:
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(f"{first} and {second} are present together or not at all")


def decode_glucose_measurement_context(payload: bytes) -> GlucoseMeasurementContext:
    """Decode a Glucose Measurement Context payload; :class:`DecodeError` on malformed bytes."""
    reader = PayloadReader(payload, _NAME)
    flags = reader.uint(1, "flags")
    sequence = reader.uint(2, "sequence number")
    extended = reader.uint(1, "extended flags") if flags & _FLAG_EXTENDED else None
    carbohydrate_id = carbohydrate = None
    if flags & _FLAG_CARBOHYDRATE:
        carbohydrate_id = reader.uint(1, "carbohydrate id")
        carbohydrate = reader.sfloat("carbohydrate")
    meal = reader.uint(1, "meal") if flags & _FLAG_MEAL else None
    tester = health = None
    if flags & _FLAG_TESTER_HEALTH:
        nibbles = reader.uint(1, "tester-health")
        tester, health = nibbles & 0x0F, nibbles >> 4
    duration = intensity = None
    if flags & _FLAG_EXERCISE:
        duration = reader.uint(2, "exercise duration")
        intensity = reader.uint(1, "exercise intensity")
    medication_id = medication = None
    if flags & _FLAG_MEDICATION:
        medication_id = reader.uint(1, "medication id")
        medication = reader.sfloat("medication")
    hba1c = reader.sfloat("hba1c") if flags & _FLAG_HBA1C else None
    reader.finish()
    unit = MedicationUnit.LITRES if flags & _FLAG_MEDICATION_LITRES else MedicationUnit.KILOGRAMS
    return GlucoseMeasurementContext(sequence, carbohydrate_id, carbohydrate, meal, tester, health, duration,
                                     intensity, medication_id, medication, unit, hba1c, extended)


def _amount(out: ResultBuilder, field: str, measured: Measured | None, factor: float) -> float | None:
    value = out.usable(field, measured)
    return None if value is None else round(value * factor, 9)


def glucose_context_details(record: GlucoseMeasurementContext, out: ResultBuilder) -> dict[str, Any]:
    """The record in plain units: names for ids, grams of carbohydrate, mg or mL of medication.

    Reserved ids read ``reserved_<n>``; an SFLOAT special value (NaN, NRes...) leaves its amount
    out with a note in ``out``.
    """
    details: dict[str, Any] = {"sequence_number": record.sequence_number}
    if record.carbohydrate_id is not None:
        details["carbohydrate"] = enum_name(CarbohydrateId, record.carbohydrate_id)
        grams = _amount(out, "carbohydrate", record.carbohydrate, 1000.0)
        if grams is not None:
            details["carbohydrate_g"] = grams
    if record.meal is not None:
        details["meal"] = enum_name(Meal, record.meal)
    if record.tester is not None and record.health is not None:
        details["tester"] = enum_name(Tester, record.tester)
        details["health"] = enum_name(Health, record.health)
    if record.exercise_duration_s is not None:
        if record.exercise_duration_s == EXERCISE_DURATION_OVERRUN:
            details["exercise_overrun"] = True
        else:
            details["exercise_duration_s"] = record.exercise_duration_s
        details["exercise_intensity_percent"] = record.exercise_intensity
    if record.medication_id is not None:
        details["medication"] = enum_name(MedicationId, record.medication_id)
        if record.medication_unit is MedicationUnit.LITRES:
            amount = _amount(out, "medication", record.medication, 1000.0)
            key = "medication_ml"
        else:
            amount = _amount(out, "medication", record.medication, 1e6)
            key = "medication_mg"
        if amount is not None:
            details[key] = amount
    if record.hba1c is not None:
        hba1c = out.usable("hba1c", record.hba1c)
        if hba1c is not None:
            details["hba1c_percent"] = hba1c
    return details


def glucose_measurement_context_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.glucose_measurement_context``: ``status["glucose_context"]``, no samples."""
    out = ResultBuilder(context)
    out.status["glucose_context"] = glucose_context_details(decode_glucose_measurement_context(payload), out)
    return out.build()


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    """A glucose measurement with its context record (None when the meter sent none)."""

    measurement: GlucoseMeasurement
    context: GlucoseMeasurementContext | None = None


class GlucoseRecordJoiner:
    """Pairs Glucose Measurements with their Context records by sequence number.

    Pure and bounded: feed records in the order they arrive; each call returns the records now
    complete. A measurement that announces no context is complete at once; one that announces a
    context waits for it, until the next measurement arrives (the meter sent none: it is released
    without). A context that arrives before its measurement waits for it; at most ``max_waiting``
    contexts wait, the oldest beyond that are dropped, and :attr:`orphan_contexts` counts contexts
    that never met their measurement.
    """

    def __init__(self, max_waiting: int = 64) -> None:
        if max_waiting < 1:
            raise ValueError("max_waiting must be at least 1")
        self.max_waiting = max_waiting
        self.orphan_contexts = 0
        self._measurements: OrderedDict[int, GlucoseMeasurement] = OrderedDict()
        self._contexts: OrderedDict[int, GlucoseMeasurementContext] = OrderedDict()

    def add_measurement(self, measurement: GlucoseMeasurement) -> list[GlucoseRecord]:
        """A measurement arrived; the records now complete, oldest first."""
        done = [GlucoseRecord(m) for m in self._measurements.values()]  # their context never came
        self._measurements.clear()
        if not measurement.context_follows:
            done.append(GlucoseRecord(measurement))
            return done
        context = self._contexts.pop(measurement.sequence_number, None)
        if context is not None:
            done.append(GlucoseRecord(measurement, context))
        else:
            self._measurements[measurement.sequence_number] = measurement
        return done

    def add_context(self, context: GlucoseMeasurementContext) -> list[GlucoseRecord]:
        """A context arrived; the record it completes, if its measurement is here."""
        measurement = self._measurements.pop(context.sequence_number, None)
        if measurement is not None:
            return [GlucoseRecord(measurement, context)]
        self._contexts[context.sequence_number] = context
        while len(self._contexts) > self.max_waiting:
            self._contexts.popitem(last=False)
            self.orphan_contexts += 1
        return []

    def flush(self) -> list[GlucoseRecord]:
        """Release every waiting measurement without its context (e.g. when the link is lost)."""
        done = [GlucoseRecord(m) for m in self._measurements.values()]
        self._measurements.clear()
        self.orphan_contexts += len(self._contexts)
        self._contexts.clear()
        return done
