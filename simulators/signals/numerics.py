"""Slow vital signs: levels as functions of time, device reading schedules, and measurement.

Each metric's true level is a baseline, a daily rhythm where physiology has one, and the episodes
that push it away (desaturation, fever, fluid gain, hypoglycaemia, ...). A device then samples the
level on its schedule (every ``interval_s``, or at fixed times of day with a little jitter), adds
measurement noise and rounds to its resolution. ``simulate_*`` functions return a
:class:`NumericSeries` (times in s, values in the catalogue unit, ground-truth events).

Times are seconds from the simulation start; ``clock_s`` is the wall-clock time (s since the Unix
epoch, UTC) of that start, used for time of day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.signals._keyed import keyed_normal, keyed_uniform, stream_key
from simulators.signals.events import Episode, Event
from simulators.signals.rhythm import RateModel, Variability

__all__ = [
    "NumericSeries",
    "blood_pressure_levels",
    "body_temperature_level",
    "body_weight_level",
    "daily_reading_times",
    "glucose_level",
    "measure",
    "regular_reading_indices",
    "simulate_blood_pressure",
    "simulate_body_temperature",
    "simulate_body_weight",
    "simulate_glucose",
    "simulate_heart_rate",
    "simulate_respiratory_rate",
    "simulate_spo2",
    "spo2_level",
]

FloatArray = npt.NDArray[np.float64]
DAY_S = 86400.0


@dataclass(frozen=True)
class NumericSeries:
    """Readings of one catalogue metric: ``times_s`` (s from start), ``values`` (catalogue unit)."""

    metric: str
    times_s: FloatArray
    values: FloatArray
    events: list[Event] = field(default_factory=list)


def _hour_of_day(t_s: FloatArray, clock_s: float) -> FloatArray:
    return np.mod(np.asarray(t_s, dtype=np.float64) + clock_s, DAY_S) / 3600.0


def _daily_cosine(t_s: FloatArray, clock_s: float, peak_hour: float) -> FloatArray:
    """+1 at ``peak_hour`` (UTC), -1 twelve hours later."""
    return np.cos(2.0 * np.pi * (_hour_of_day(t_s, clock_s) - peak_hour) / 24.0)


def _sum(t: FloatArray, episodes: Sequence[Episode]) -> FloatArray:
    out = np.zeros(np.shape(t), dtype=np.float64)
    for episode in episodes:
        out += episode.value(t)
    return out


def spo2_level(
    t_s: FloatArray, *, baseline_pct: float, drops: Sequence[Episode] = (), wander: Variability | None = None
) -> FloatArray:
    """True SpO2 (%) at ``t_s``: baseline minus desaturation episodes (magnitude in % points)."""
    t = np.asarray(t_s, dtype=np.float64)
    level = baseline_pct - _sum(t, drops)
    if wander is not None:
        level = level + wander.value(t)
    return np.clip(level, 50.0, 100.0)


def blood_pressure_levels(
    t_s: FloatArray,
    *,
    clock_s: float,
    systolic: float,
    diastolic: float,
    rises: Sequence[Episode] = (),
) -> tuple[FloatArray, FloatArray]:
    """True (systolic, diastolic) mmHg: ~10 % lower at night, raised by ``rises`` (systolic mmHg;
    diastolic follows at 60 %)."""
    t = np.asarray(t_s, dtype=np.float64)
    day = 1.0 + 0.05 * _daily_cosine(t, clock_s, 14.0)  # nocturnal dip of ~10 % peak-to-trough
    rise = _sum(t, rises)
    return systolic * day + rise, diastolic * day + 0.6 * rise


def body_temperature_level(
    t_s: FloatArray, *, clock_s: float, baseline_c: float, fevers: Sequence[Episode] = ()
) -> FloatArray:
    """True core temperature (degC): circadian +-0.3 degC peaking late afternoon, plus fevers (degC)."""
    t = np.asarray(t_s, dtype=np.float64)
    return baseline_c + 0.3 * _daily_cosine(t, clock_s, 17.0) + _sum(t, fevers)


def body_weight_level(t_s: FloatArray, *, baseline_kg: float, gains: Sequence[Episode] = ()) -> FloatArray:
    """True body weight (kg): baseline plus fluid-gain episodes (kg)."""
    t = np.asarray(t_s, dtype=np.float64)
    return baseline_kg + _sum(t, gains)


_MEAL_PEAK_S = 50.0 * 60.0


def glucose_level(
    t_s: FloatArray,
    *,
    clock_s: float,
    baseline_mmol: float,
    meal_hours: Sequence[float] = (7.5, 12.5, 19.0),
    meal_rise_mmol: float = 2.5,
    drops: Sequence[Episode] = (),
    seed: int = 0,
) -> FloatArray:
    """True interstitial glucose (mmol/L): baseline, meal excursions peaking ~50 min after each meal
    (daily at ``meal_hours`` UTC, +-30 min, size +-30 % per meal), minus hypoglycaemia ``drops``."""
    t = np.asarray(t_s, dtype=np.float64)
    level = np.full(t.shape, baseline_mmol, dtype=np.float64)
    if len(t) and meal_hours and meal_rise_mmol:
        absolute = t + clock_s
        first_day = int(np.floor((absolute.min() - DAY_S) / DAY_S))
        last_day = int(np.floor(absolute.max() / DAY_S))
        slots = len(meal_hours)
        for day in range(max(first_day, 0), last_day + 1):
            index = np.arange(day * slots, (day + 1) * slots)
            jitter = (keyed_uniform(seed, stream_key("meal-time"), index) - 0.5) * 3600.0
            size = 1.0 + 0.3 * (2.0 * keyed_uniform(seed, stream_key("meal-size"), index) - 1.0)
            for hour, shift, scale in zip(meal_hours, jitter, size, strict=True):
                meal_abs = day * DAY_S + hour * 3600.0 + shift
                x = np.maximum(absolute - meal_abs, 0.0) / _MEAL_PEAK_S
                level += meal_rise_mmol * scale * (x * np.exp(1.0 - x)) ** 2
    return np.maximum(level - _sum(t, drops), 1.0)


def measure(
    level: FloatArray,
    noise: FloatArray,
    *,
    noise_std: float,
    resolution: float,
    low: float,
    high: float,
) -> FloatArray:
    """A device reading: ``level + noise_std * noise``, rounded to ``resolution``, clipped to its range."""
    value = np.asarray(level, dtype=np.float64) + noise_std * np.asarray(noise, dtype=np.float64)
    value = np.round(value / resolution) * resolution
    clipped: FloatArray = np.clip(value, low, high).astype(np.float64)
    return np.round(clipped, 6)


def regular_reading_indices(t_lo: float, t_hi: float, interval_s: float) -> npt.NDArray[np.int64]:
    """Indices k >= 0 of readings at ``k * interval_s`` seconds inside ``[t_lo, t_hi)``."""
    k0 = max(int(np.ceil(t_lo / interval_s)) - 1, 0)
    k1 = int(np.ceil(t_hi / interval_s)) + 1
    k = np.arange(k0, k1, dtype=np.int64)
    t = k.astype(np.float64) * interval_s
    return k[(t >= t_lo) & (t < t_hi)]


def daily_reading_times(
    t_lo: float,
    t_hi: float,
    *,
    clock_s: float,
    hours: Sequence[float],
    jitter_s: float,
    seed: int,
    key: int,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Readings taken daily at ``hours`` (UTC) +- ``jitter_s``: (times in s from start, reading ids).

    Reading ids count (day since epoch, slot) and address the reading's noise draws.
    """
    slots = len(hours)
    if slots == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    day0 = int(np.floor((t_lo + clock_s - jitter_s) / DAY_S)) - 1
    day1 = int(np.floor((t_hi + clock_s + jitter_s) / DAY_S)) + 1
    days = np.arange(max(day0, 0), day1 + 1, dtype=np.int64)
    ids = (days[:, None] * slots + np.arange(slots)[None, :]).ravel()
    base = (days[:, None] * DAY_S + np.asarray(hours, dtype=np.float64)[None, :] * 3600.0).ravel()
    jitter = (2.0 * keyed_uniform(seed, key, ids) - 1.0) * jitter_s
    times = base + jitter - clock_s
    keep = (times >= t_lo) & (times < t_hi)
    order = np.argsort(times[keep], kind="stable")
    return times[keep][order], ids[keep][order]


def _events(kind: str, episodes: Sequence[Episode]) -> list[Event]:
    return [Event(kind, e.start_s, e.end_s) for e in episodes]


def _noise(seed: int, name: str, index: npt.ArrayLike) -> FloatArray:
    return keyed_normal(seed, stream_key(name), index)


def simulate_spo2(
    duration_s: float,
    *,
    baseline_pct: float = 97.0,
    interval_s: float = 1.0,
    desaturations: Sequence[Episode] = (),
    seed: int = 0,
) -> NumericSeries:
    """SpO2 readings (%, 1 % resolution) every ``interval_s`` s; ``desaturations`` drop % points.

    Events: "hypoxia" for each desaturation window.
    """
    k = regular_reading_indices(0.0, duration_s, interval_s)
    t = k.astype(np.float64) * interval_s
    wander = Variability.slow_drift(np.random.default_rng([seed, stream_key("spo2")]), std=0.4)
    level = spo2_level(t, baseline_pct=baseline_pct, drops=desaturations, wander=wander)
    values = measure(level, _noise(seed, "spo2", k), noise_std=0.5, resolution=1.0, low=50.0, high=100.0)
    return NumericSeries("spo2", t, values, _events("hypoxia", desaturations))


def simulate_heart_rate(
    duration_s: float,
    *,
    heart_rate: float = 70.0,
    heart_rate_std: float = 3.0,
    lf_hf_ratio: float = 1.5,
    interval_s: float = 1.0,
    rises: Sequence[Episode] = (),
    seed: int = 0,
) -> NumericSeries:
    """Heart-rate readings (/min, 1/min resolution) every ``interval_s`` s; ``rises`` add bpm.

    Events: "tachycardia" for each rise.
    """
    rng = np.random.default_rng([seed, stream_key("heart_rate")])
    model = RateModel(
        heart_rate,
        tuple(rises),
        Variability.heart_rate(rng, std_per_min=heart_rate_std, lf_hf_ratio=lf_hf_ratio, hf_hz=0.25),
    )
    k = regular_reading_indices(0.0, duration_s, interval_s)
    t = k.astype(np.float64) * interval_s
    values = measure(model.rate(t), _noise(seed, "heart_rate", k), noise_std=1.0, resolution=1.0,
                     low=20.0, high=300.0)
    return NumericSeries("heart_rate", t, values, _events("tachycardia", rises))


def simulate_respiratory_rate(
    duration_s: float,
    *,
    respiratory_rate: float = 15.0,
    interval_s: float = 60.0,
    rises: Sequence[Episode] = (),
    seed: int = 0,
) -> NumericSeries:
    """Respiratory-rate readings (/min, 1/min resolution) every ``interval_s`` s; ``rises`` add /min.

    Events: "tachypnoea" for each rise.
    """
    rng = np.random.default_rng([seed, stream_key("respiratory_rate")])
    model = RateModel(respiratory_rate, tuple(rises), Variability.slow_drift(rng, std=0.8))
    k = regular_reading_indices(0.0, duration_s, interval_s)
    t = k.astype(np.float64) * interval_s
    values = measure(model.rate(t), _noise(seed, "respiratory_rate", k), noise_std=0.7, resolution=1.0,
                     low=2.0, high=80.0)
    return NumericSeries("respiratory_rate", t, values, _events("tachypnoea", rises))


def simulate_blood_pressure(
    duration_s: float,
    *,
    systolic: float = 125.0,
    diastolic: float = 80.0,
    hours: Sequence[float] = (7.0, 19.0),
    rises: Sequence[Episode] = (),
    clock_s: float = 0.0,
    seed: int = 0,
) -> dict[str, NumericSeries]:
    """Cuff readings at ``hours`` (UTC) +-15 min: bp_systolic, bp_diastolic, bp_mean (mmHg, 1 mmHg).

    ``rises`` add systolic mmHg (diastolic +60 %). Events: "hypertension" for each rise.
    """
    t, ids = daily_reading_times(0.0, duration_s, clock_s=clock_s, hours=hours, jitter_s=900.0,
                                 seed=seed, key=stream_key("bp-time"))
    sys_level, dia_level = blood_pressure_levels(t, clock_s=clock_s, systolic=systolic,
                                                 diastolic=diastolic, rises=rises)
    sys_v = measure(sys_level, _noise(seed, "bp_systolic", ids), noise_std=6.0, resolution=1.0,
                    low=40.0, high=300.0)
    dia_v = measure(dia_level, _noise(seed, "bp_diastolic", ids), noise_std=4.0, resolution=1.0,
                    low=20.0, high=200.0)
    mean_v = np.round(dia_v + (sys_v - dia_v) / 3.0)
    events = _events("hypertension", rises)
    return {
        "bp_systolic": NumericSeries("bp_systolic", t, sys_v, events),
        "bp_diastolic": NumericSeries("bp_diastolic", t, dia_v, events),
        "bp_mean": NumericSeries("bp_mean", t, mean_v, events),
    }


def simulate_body_temperature(
    duration_s: float,
    *,
    baseline_c: float = 36.8,
    interval_s: float = 600.0,
    fevers: Sequence[Episode] = (),
    clock_s: float = 0.0,
    seed: int = 0,
) -> NumericSeries:
    """Temperature readings (degC, 0.1 resolution) every ``interval_s`` s; ``fevers`` add degC.

    Events: "fever" for each fever window.
    """
    k = regular_reading_indices(0.0, duration_s, interval_s)
    t = k.astype(np.float64) * interval_s
    level = body_temperature_level(t, clock_s=clock_s, baseline_c=baseline_c, fevers=fevers)
    values = measure(level, _noise(seed, "body_temperature", k), noise_std=0.08, resolution=0.1,
                     low=30.0, high=45.0)
    return NumericSeries("body_temperature", t, values, _events("fever", fevers))


def simulate_body_weight(
    duration_s: float,
    *,
    baseline_kg: float = 75.0,
    hours: Sequence[float] = (7.0,),
    gains: Sequence[Episode] = (),
    clock_s: float = 0.0,
    seed: int = 0,
) -> NumericSeries:
    """Scale readings (kg, 0.1 kg) daily at ``hours`` (UTC) +-20 min; ``gains`` add kg (fluid).

    Events: "weight_gain" for each gain.
    """
    t, ids = daily_reading_times(0.0, duration_s, clock_s=clock_s, hours=hours, jitter_s=1200.0,
                                 seed=seed, key=stream_key("weight-time"))
    level = body_weight_level(t, baseline_kg=baseline_kg, gains=gains)
    values = measure(level, _noise(seed, "body_weight", ids), noise_std=0.25, resolution=0.1,
                     low=0.5, high=400.0)
    return NumericSeries("body_weight", t, values, _events("weight_gain", gains))


def simulate_glucose(
    duration_s: float,
    *,
    baseline_mmol: float = 5.5,
    interval_s: float = 300.0,
    meal_hours: Sequence[float] = (7.5, 12.5, 19.0),
    meal_rise_mmol: float = 2.5,
    drops: Sequence[Episode] = (),
    clock_s: float = 0.0,
    seed: int = 0,
) -> NumericSeries:
    """CGM readings (mmol/L, 0.1 resolution) every ``interval_s`` s with meals and ``drops``.

    Events: "hypoglycaemia" for each drop.
    """
    k = regular_reading_indices(0.0, duration_s, interval_s)
    t = k.astype(np.float64) * interval_s
    level = glucose_level(t, clock_s=clock_s, baseline_mmol=baseline_mmol, meal_hours=meal_hours,
                          meal_rise_mmol=meal_rise_mmol, drops=drops, seed=seed)
    values = measure(level, _noise(seed, "blood_glucose", k), noise_std=0.15, resolution=0.1,
                     low=1.0, high=40.0)
    return NumericSeries("blood_glucose", t, values, _events("hypoglycaemia", drops))
