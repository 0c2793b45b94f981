"""Virtual Bluetooth health devices: scenario readings as the GATT notifications a real device sends.

One table row per device kind (:data:`BLE_DEVICE_KINDS`) says which characteristic the device
notifies, which scenario metric makes a reading (the *trigger*), which other metrics ride along
with it, the decimal resolution it carries, and how one reading becomes a record type of
:mod:`device_profiles.gatt`; :mod:`simulators.devices.gatt_encode` turns the record into bytes.
So the virtual device and the gateway's decoders check each other, and the gateway cannot tell
the virtual device from hardware. No radio: notifications are handed to the same interface the
bleak transport feeds.

Times. A characteristic with a Date Time field carries the reading's time as the device clock
shows it: local time (``utc_offset_s``), whole seconds (rounded). Its notification arrives at the
reading's time, or just after the previous notification when the scenario delivers a reading
late (a device sends its backlog in order). A characteristic without a time stamp is stamped by
the gateway on receipt, so its notification's time is the reading's time.

Pure: the caller advances the scenario run (:meth:`VirtualBleDevice.advance`) or passes chunks
(:meth:`VirtualBleDevice.notifications`); nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from device_profiles.gatt.blood_pressure import BloodPressureMeasurement, PressureUnit
from device_profiles.gatt.date_time import DateTime
from device_profiles.gatt.glucose import (
    GlucoseConcentration,
    GlucoseConcentrationUnit,
    GlucoseMeasurement,
    GlucoseSampleLocation,
    GlucoseType,
)
from device_profiles.gatt.heart_rate import HeartRateMeasurement, SensorContact
from device_profiles.gatt.plx_continuous import PlxContinuousMeasurement
from device_profiles.gatt.pulse_oximetry import SpO2PulseRate
from device_profiles.gatt.temperature import TemperatureMeasurement, TemperatureUnit
from device_profiles.gatt.uuids import uuid16_to_uuid128
from device_profiles.gatt.weight import WeightMeasurement, WeightUnit
from device_profiles.ieee11073 import Measured, SpecialValue
from simulators.devices.gatt_encode import encode_record
from simulators.scenarios.run import Chunk

__all__ = [
    "BLE_DEVICE_KINDS",
    "BleDeviceKind",
    "Notification",
    "Reading",
    "ScenarioSource",
    "VirtualBleDevice",
    "VirtualPulseOximeter",
    "device_time",
]

Notification = tuple[str, bytes, int]
"""``(characteristic UUID, payload, time in Unix ns)``."""

_NS = 1_000_000_000
_MAX_RR_PER_NOTIFICATION = 9  # what fits a default 23-byte ATT MTU after the flags and a uint8 rate
_MAX_RR = 3 * 1024  # a longer "interval" spans lost contact (a dropout), not one beat
_BEAT_MEMORY_NS = 10 * _NS  # R peaks kept for a heart-rate reading that has not arrived yet
_SFLOAT_MAX = 2045  # largest SFLOAT mantissa at exponent 0 that is not a special value


class ScenarioSource(Protocol):
    """What a virtual device drives: a scenario run (:class:`simulators.scenarios.ScenarioRun`)."""

    @property
    def elapsed_s(self) -> float:
        """Scenario seconds produced so far."""
        ...

    def advance(self, duration_s: float) -> Chunk:
        """The next ``duration_s`` seconds of readings."""
        ...


@dataclass(frozen=True, slots=True)
class Reading:
    """One device reading: reading time (Unix ns), values by metric (``None``: the device has none),
    the device's local time stamp (timestamped kinds), its sequence number and the RR intervals
    (1/1024 s) that ended since the previous reading (``None``: no beats known)."""

    time_ns: int
    values: Mapping[str, float | None]
    timestamp: DateTime | None = None
    sequence_number: int = 0
    rr_intervals: tuple[int, ...] | None = None


@dataclass(frozen=True)
class BleDeviceKind:
    """A row of the table: how a kind of Bluetooth health device reports scenario readings.

    ``trigger`` is the scenario metric whose readings become notifications; ``companions`` maps
    each other value the reading carries to the scenario metrics it may come from, first found
    wins (taken at the reading's time, interpolated between readings when the scenario has none
    at that instant). ``carries`` lists the scenario metrics the device reports. ``resolution``
    is each value's device step in the catalogue unit; values are rounded to it before encoding.
    ``build`` makes the record from a reading. ``beats``: the device adds RR intervals when the
    scenario chunk carries R peaks.
    """

    kind: str
    profile: str
    characteristic: str
    trigger: str
    carries: tuple[str, ...]
    resolution: Mapping[str, Decimal]
    build: Callable[[Reading, BleDeviceKind], object]
    companions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timestamped: bool = False
    beats: bool = False

    def exponent(self, metric: str) -> int:
        """The decimal exponent of ``metric``'s resolution (SFLOAT/FLOAT exponent on the wire)."""
        exponent = self.resolution[metric].as_tuple().exponent
        assert isinstance(exponent, int)
        return exponent

    def quantize(self, metric: str, value: float) -> float:
        """``value`` rounded to the device step of ``metric``: the float the decoder gives back."""
        step = self.resolution[metric]
        return float(Decimal(round(value / float(step))) * step)


def _measured(value: float | None, exponent: int) -> Measured:
    """An SFLOAT/FLOAT of an already rounded value; no value is sent as NaN, as devices do."""
    return Measured.missing(SpecialValue.NAN) if value is None else Measured.of(value, exponent)


def _clip(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(high, max(low, value))


def device_time(time_ns: int, utc_offset_s: int) -> DateTime:
    """The Date Time a device clock set to local time (``utc_offset_s`` east of UTC) shows at ``time_ns``."""
    local_s = (time_ns + utc_offset_s * _NS + _NS // 2) // _NS
    stamp = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=local_s)
    return DateTime(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)


def _plx_continuous(reading: Reading, kind: BleDeviceKind) -> PlxContinuousMeasurement:
    values = reading.values
    return PlxContinuousMeasurement(normal=SpO2PulseRate(
        spo2=_measured(_clip(values["spo2"], 0, 100), kind.exponent("spo2")),
        pulse_rate=_measured(_clip(values.get("pulse_rate"), 0, _SFLOAT_MAX), kind.exponent("pulse_rate")),
    ))


def _heart_rate(reading: Reading, kind: BleDeviceKind) -> HeartRateMeasurement:
    rate = int(_clip(reading.values["heart_rate"], 0, 0xFFFF) or 0)
    return HeartRateMeasurement(rate, SensorContact.DETECTED, None, reading.rr_intervals, uint16_format=rate > 0xFF)


def _blood_pressure(reading: Reading, kind: BleDeviceKind) -> BloodPressureMeasurement:
    values = reading.values
    systolic, diastolic, mean = values["bp_systolic"], values.get("bp_diastolic"), values.get("bp_mean")
    if mean is None and systolic is not None and diastolic is not None:
        mean = kind.quantize("bp_mean", diastolic + (systolic - diastolic) / 3.0)  # the cuff's own MAP
    pulse = values.get("pulse_rate")

    def pressure(metric: str, value: float | None) -> Measured:
        return _measured(_clip(value, 0, _SFLOAT_MAX), kind.exponent(metric))

    return BloodPressureMeasurement(
        systolic=pressure("bp_systolic", systolic),
        diastolic=pressure("bp_diastolic", diastolic),
        mean_arterial_pressure=pressure("bp_mean", mean),
        unit=PressureUnit.MMHG,
        timestamp=reading.timestamp,
        pulse_rate=None if pulse is None else pressure("pulse_rate", pulse),
    )


def _temperature(reading: Reading, kind: BleDeviceKind) -> TemperatureMeasurement:
    value = reading.values["body_temperature"]
    return TemperatureMeasurement(_measured(value, kind.exponent("body_temperature")), TemperatureUnit.CELSIUS,
                                  reading.timestamp)


def _weight(reading: Reading, kind: BleDeviceKind) -> WeightMeasurement:
    # SI weight is a uint16 count of 5 g; 0xFFFF means "unsuccessful"
    return WeightMeasurement(_clip(reading.values["body_weight"], 0.0, 327.67), WeightUnit.SI, reading.timestamp)


def _glucose(reading: Reading, kind: BleDeviceKind) -> GlucoseMeasurement:
    assert reading.timestamp is not None  # the base time is mandatory; the glucose row is timestamped
    value = reading.values["blood_glucose"]
    # mmol/L at 10**e on the wire is an SFLOAT in mol/L with exponent e - 3
    exponent = kind.exponent("blood_glucose") - 3
    concentration = _measured(None if value is None else float(Decimal(repr(value)).scaleb(-3)), exponent)
    return GlucoseMeasurement(
        sequence_number=reading.sequence_number,
        base_time=reading.timestamp,
        concentration=GlucoseConcentration(concentration, GlucoseConcentrationUnit.MOL_PER_L,
                                           GlucoseType.CAPILLARY_WHOLE_BLOOD, GlucoseSampleLocation.FINGER),
    )


_ONE, _TENTH = Decimal("1"), Decimal("0.1")

BLE_DEVICE_KINDS: dict[str, BleDeviceKind] = {
    kind.kind: kind
    for kind in (
        BleDeviceKind("pulse_oximeter", "generic.pulse_oximeter", uuid16_to_uuid128(0x2A5F), "spo2",
                      ("spo2", "pulse_rate"), {"spo2": _ONE, "pulse_rate": _ONE}, _plx_continuous,
                      companions={"pulse_rate": ("pulse_rate", "heart_rate")}),
        BleDeviceKind("heart_rate_strap", "generic.heart_rate_strap", uuid16_to_uuid128(0x2A37), "heart_rate",
                      ("heart_rate",), {"heart_rate": _ONE}, _heart_rate, beats=True),
        BleDeviceKind("bp_cuff", "generic.bp_cuff", uuid16_to_uuid128(0x2A35), "bp_systolic",
                      ("bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"),
                      {"bp_systolic": _ONE, "bp_diastolic": _ONE, "bp_mean": _ONE, "pulse_rate": _ONE},
                      _blood_pressure,
                      companions={"bp_diastolic": ("bp_diastolic",), "bp_mean": ("bp_mean",),
                                  "pulse_rate": ("pulse_rate", "heart_rate")},
                      timestamped=True),
        BleDeviceKind("thermometer", "generic.thermometer", uuid16_to_uuid128(0x2A1C), "body_temperature",
                      ("body_temperature",), {"body_temperature": _TENTH}, _temperature, timestamped=True),
        BleDeviceKind("weight_scale", "generic.weight_scale", uuid16_to_uuid128(0x2A9D), "body_weight",
                      ("body_weight",), {"body_weight": Decimal("0.005")}, _weight, timestamped=True),
        BleDeviceKind("glucose_meter", "generic.glucose_meter", uuid16_to_uuid128(0x2A18), "blood_glucose",
                      ("blood_glucose",), {"blood_glucose": _TENTH}, _glucose, timestamped=True),
    )
}
"""Device kind -> how it reports (characteristic, metrics, resolution, record)."""


def _sorted_series(numerics: Mapping[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
                   candidates: tuple[str, ...]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    for metric in candidates:
        times, values = numerics.get(metric, (np.zeros(0, np.int64), np.zeros(0)))
        if len(times):
            order = np.argsort(times, kind="stable")  # late readings arrive out of order
            return np.asarray(times, np.float64)[order], np.asarray(values, np.float64)[order]
    return None


class VirtualBleDevice:
    """A Bluetooth health device of ``kind`` (a key of :data:`BLE_DEVICE_KINDS`, or a row).

    ``run`` is the scenario run :meth:`advance` drives (optional when chunks are passed to
    :meth:`notifications`). ``utc_offset_s`` is what the device clock is set to: local time,
    seconds east of UTC. ``first_sequence_number`` starts the record counter (glucose meters).
    State carried across chunks: the record counter, R peaks not yet reported, the last value of
    each companion metric, and the last arrival time. :attr:`sent` counts notifications.
    """

    def __init__(self, kind: str | BleDeviceKind, run: ScenarioSource | None = None, *, utc_offset_s: int = 0,
                 first_sequence_number: int = 1) -> None:
        if isinstance(kind, str):
            try:
                kind = BLE_DEVICE_KINDS[kind]
            except KeyError:
                raise ValueError(f"no virtual BLE device of kind {kind!r}; "
                                 f"known: {', '.join(BLE_DEVICE_KINDS)}") from None
        self.kind = kind
        self.run = run
        self.utc_offset_s = utc_offset_s
        self.sent = 0
        self._sequence = first_sequence_number & 0xFFFF
        self._last_companion: dict[str, float] = {}
        self._last_arrival_ns: int | None = None
        self._beat_anchor_ns: int | None = None
        self._beats_pending = np.zeros(0, dtype=np.int64)

    @property
    def characteristic(self) -> str:
        """The UUID (128-bit, lower case) of the characteristic this device notifies."""
        return self.kind.characteristic

    def advance(self, duration_s: float) -> list[Notification]:
        """Advance the scenario by ``duration_s`` seconds; return the notifications it produced."""
        if self.run is None:
            raise ValueError("this virtual device has no scenario run; pass chunks to notifications()")
        return self.notifications(self.run.advance(duration_s))

    def notifications(self, chunk: Chunk) -> list[Notification]:
        """The notifications for one scenario chunk, in the order the scenario delivers readings."""
        kind = self.kind
        times, values = chunk.numerics.get(kind.trigger, (np.zeros(0, np.int64), np.zeros(0)))
        peaks = chunk.r_peaks_ns if kind.beats else np.zeros(0, dtype=np.int64)
        if kind.beats and len(peaks):
            self._beats_pending = np.concatenate([self._beats_pending, np.asarray(peaks, dtype=np.int64)])
        out: list[Notification] = []
        if len(times):
            companions = {role: self._companion(chunk, role, candidates, times)
                          for role, candidates in kind.companions.items()}
            for index, (time_ns, value) in enumerate(zip(times.tolist(), values.tolist(), strict=True)):
                reading_values: dict[str, float | None] = {kind.trigger: self._quantize(kind.trigger, value)}
                for role, column in companions.items():
                    reading_values[role] = self._quantize(role, column[index])
                out.append(self._notify(int(time_ns), reading_values))
        if kind.beats and len(self._beats_pending):
            recent = self._beats_pending >= chunk.end_ns - _BEAT_MEMORY_NS
            self._beats_pending = self._beats_pending[recent]
        self.sent += len(out)
        return out

    def _quantize(self, metric: str, value: float | None) -> float | None:
        if value is None or metric not in self.kind.resolution:
            return value
        return self.kind.quantize(metric, value)

    def _companion(self, chunk: Chunk, role: str, candidates: tuple[str, ...],
                   times: npt.NDArray[np.int64]) -> list[float | None]:
        series = _sorted_series(chunk.numerics, candidates)
        if series is None:
            last = self._last_companion.get(role)
            return [last] * len(times)
        series_times, series_values = series
        self._last_companion[role] = float(series_values[-1])
        column: list[float | None] = np.interp(np.asarray(times, np.float64), series_times, series_values).tolist()
        return column

    def _notify(self, time_ns: int, values: dict[str, float | None]) -> Notification:
        kind = self.kind
        if kind.timestamped:
            arrival = time_ns if self._last_arrival_ns is None else max(time_ns, self._last_arrival_ns)
            reading = Reading(time_ns, values, device_time(time_ns, self.utc_offset_s), self._sequence)
            self._sequence = (self._sequence + 1) & 0xFFFF
        else:
            arrival = time_ns
            reading = Reading(time_ns, values, rr_intervals=self._rr_intervals(time_ns) if kind.beats else None)
        self._last_arrival_ns = arrival
        return kind.characteristic, encode_record(kind.build(reading, kind)), arrival

    def _rr_intervals(self, time_ns: int) -> tuple[int, ...] | None:
        """RR intervals (1/1024 s) of the beats that ended since the previous reading, newest last."""
        pending = self._beats_pending
        taken = pending[pending <= time_ns]
        if not len(taken):
            return None
        self._beats_pending = pending[pending > time_ns]
        chain = taken if self._beat_anchor_ns is None else np.concatenate([[self._beat_anchor_ns], taken])
        self._beat_anchor_ns = int(taken[-1])
        rr = [round(int(gap) * 1024 / _NS) for gap in np.diff(chain)]
        rr = [value for value in rr if value <= _MAX_RR][-_MAX_RR_PER_NOTIFICATION:]
        return tuple(rr) or None


class VirtualPulseOximeter(VirtualBleDevice):
    """A PLX pulse oximeter: each scenario ``spo2`` reading becomes a PLX Continuous (0x2A5F)
    notification with the pulse rate at the same instant (``pulse_rate``, else ``heart_rate``;
    NaN when the scenario has neither), rounded to the device resolution of 1 % and 1 /min."""

    def __init__(self, run: ScenarioSource | None = None, *, utc_offset_s: int = 0) -> None:
        super().__init__("pulse_oximeter", run, utc_offset_s=utc_offset_s)
