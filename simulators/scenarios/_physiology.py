"""A scenario's patient as functions of time: the true level of every vital sign, and the heart.

Built once per run from the scenario and the seed; every method is a pure function of time in
seconds from the run start, so chunks of any size agree with one long pass.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from simulators.scenarios.model import Scenario, TimelineEvent
from simulators.signals._keyed import keyed_normal, stream_key
from simulators.signals.ecg import EcgModel
from simulators.signals.events import Episode
from simulators.signals.numerics import (
    blood_pressure_levels,
    body_temperature_level,
    body_weight_level,
    glucose_level,
    spo2_level,
)
from simulators.signals.rhythm import RateModel, RhythmModel, Variability

__all__ = ["Physiology"]

FloatArray = npt.NDArray[np.float64]

# How other episodes move heart and breathing rates (per unit of the episode's magnitude).
_HEART_COUPLING = {"tachycardia": 1.0, "hypoxia": 0.8, "fever": 8.0, "hypoglycaemia": 2.0}
_BREATH_COUPLING = {"tachypnoea": 1.0, "hypoxia": 0.5, "fever": 2.0}
_DEFAULT_MAGNITUDE = {"af": 110.0}


def _episode(event: TimelineEvent, scale: float = 1.0) -> Episode:
    magnitude = event.magnitude if event.magnitude is not None else _DEFAULT_MAGNITUDE.get(event.type, 1.0)
    return Episode(event.start_s, event.duration_s, magnitude * scale, event.ramp_s)


class Physiology:
    """True levels of a scenario's patient (see module doc)."""

    def __init__(self, scenario: Scenario, seed: int, clock_s: float) -> None:
        self.scenario = scenario
        self.seed = seed
        self.clock_s = clock_s
        base = scenario.baseline
        timeline = scenario.timeline
        rng = np.random.default_rng([seed & 0xFFFFFFFF, stream_key(scenario.name)])

        def episodes(kind: str) -> tuple[Episode, ...]:
            return tuple(_episode(e) for e in timeline if e.type == kind)

        def coupled(table: dict[str, float]) -> tuple[Episode, ...]:
            return tuple(_episode(e, table[e.type]) for e in timeline if e.type in table)

        self.af = episodes("af")
        breathing_hz = base["respiratory_rate"] / 60.0
        self.heart = RateModel(
            base["heart_rate"],
            coupled(_HEART_COUPLING),
            Variability.heart_rate(rng, std_per_min=base["heart_rate_std"], lf_hf_ratio=base["lf_hf_ratio"],
                                   hf_hz=breathing_hz),
            phase_offset=float(rng.uniform()),
        )
        self.breathing = RateModel(
            base["respiratory_rate"],
            coupled(_BREATH_COUPLING),
            Variability.slow_drift(rng, std=0.6),
            phase_offset=float(rng.uniform()),
        )
        self.spo2_wander = Variability.slow_drift(rng, std=0.4)
        self.rhythm = RhythmModel(
            self.heart,
            seed=seed,
            af_episodes=self.af,
            pvc_per_min=base["pvc_per_min"],
            pvc_episodes=episodes("pvc"),
        )
        self.ecg = EcgModel(self.rhythm, self.breathing, amplitude_mv=base["ecg_amplitude"], seed=seed)
        self.desaturations = episodes("hypoxia")
        self.fevers = episodes("fever")
        self.gains = episodes("weight_gain")
        self.hypos = episodes("hypoglycaemia")
        self.bp_rises = episodes("hypertension")
        self.motion = episodes("motion")
        self.lead_off = tuple(e for e in timeline if e.type == "lead_off")
        self.dropouts = tuple(e for e in timeline if e.type == "dropout")
        self.motion_phases = rng.uniform(0.0, 2.0 * np.pi, 4)

    def in_af(self, t: FloatArray) -> npt.NDArray[np.bool_]:
        """True where the rhythm is atrial fibrillation."""
        out = np.zeros(np.shape(t), dtype=bool)
        for episode in self.af:
            out |= (t >= episode.start_s) & (t < episode.end_s)
        return out

    def heart_rate(self, t: FloatArray, index: npt.NDArray[np.int64], stream: str) -> FloatArray:
        """Heart rate a monitor would average (/min): sinus rate, or the irregular AF rate."""
        rate = self.heart.rate(t)
        af = self.in_af(t)
        if af.any():
            ventricular = np.zeros(t.shape, dtype=np.float64)
            for episode in self.af:
                ventricular += replace(episode, ramp_s=0.0).value(t)
            scatter = 12.0 * keyed_normal(self.seed, stream_key(stream + "-af"), index)
            rate = np.where(af, ventricular + scatter, rate)
        return rate

    def level(self, metric: str, t: FloatArray, index: npt.NDArray[np.int64]) -> FloatArray:
        """True level of numeric ``metric`` at ``t`` (s), before measurement noise; catalogue unit."""
        base = self.scenario.baseline
        if metric in ("heart_rate", "pulse_rate"):
            return self.heart_rate(t, index, metric)
        if metric == "respiratory_rate":
            return self.breathing.rate(t)
        if metric == "spo2":
            return spo2_level(t, baseline_pct=base["spo2"], drops=self.desaturations, wander=self.spo2_wander)
        if metric in ("bp_systolic", "bp_diastolic", "bp_mean"):
            sys, dia = blood_pressure_levels(t, clock_s=self.clock_s, systolic=base["bp_systolic"],
                                             diastolic=base["bp_diastolic"], rises=self.bp_rises)
            return {"bp_systolic": sys, "bp_diastolic": dia, "bp_mean": dia + (sys - dia) / 3.0}[metric]
        if metric == "body_temperature":
            return body_temperature_level(t, clock_s=self.clock_s, baseline_c=base["body_temperature"],
                                          fevers=self.fevers)
        if metric == "body_weight":
            return body_weight_level(t, baseline_kg=base["body_weight"], gains=self.gains)
        if metric == "blood_glucose":
            return glucose_level(t, clock_s=self.clock_s, baseline_mmol=base["blood_glucose"],
                                 meal_rise_mmol=base["meal_rise"], drops=self.hypos, seed=self.seed)
        raise KeyError(metric)

    def motion_artifact(self, t: FloatArray) -> FloatArray:
        """Motion-artifact swing during motion episodes (magnitude units), 0 elsewhere."""
        out = np.zeros(np.shape(t), dtype=np.float64)
        for episode in self.motion:
            inside = (t >= episode.start_s - 0.1) & (t < episode.end_s + 0.1)
            if not inside.any():
                continue
            ti = t[inside]
            envelope = replace(episode, ramp_s=max(episode.ramp_s, 0.1)).value(ti)
            swing = np.zeros(ti.shape, dtype=np.float64)
            for f, p in zip((0.7, 1.9, 3.3, 5.1), self.motion_phases, strict=True):
                swing += np.sin(2.0 * np.pi * f * ti + p) / 2.0
            out[inside] = envelope * swing
        return out

    def lead_off_mask(self, t: FloatArray, device: str) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(flat, saturated) masks of samples where the electrodes of ``device`` are off."""
        flat = np.zeros(np.shape(t), dtype=bool)
        saturated = np.zeros(np.shape(t), dtype=bool)
        for event in self.lead_off:
            if event.device not in (None, device):
                continue
            inside = (t >= event.start_s) & (t < event.end_s)
            if event.mode == "saturated":
                saturated |= inside
            else:
                flat |= inside
        return flat, saturated

    def silent(self, t: FloatArray, device: str) -> npt.NDArray[np.bool_]:
        """True where ``device`` is in a dropout (out of range, battery swap)."""
        out = np.zeros(np.shape(t), dtype=bool)
        for event in self.dropouts:
            if event.device in (None, device):
                out |= (t >= event.start_s) & (t < event.end_s)
        return out
