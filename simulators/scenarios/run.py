"""Running a scenario: chunks of readings and waveforms, continuous across calls, with ground truth.

``ScenarioRun.advance(seconds)`` returns what the devices produced in the next window: numeric
readings per metric as (times in ns, values) and, when asked, waveforms as (first sample time in ns,
rate in Hz, values). Readings are listed in the order they are delivered: a late reading appears in
the chunk covering its delivery, after newer ones; a duplicated reading appears twice. Every value is
a pure function of its time and the seed, so chunks of any size concatenate to one long pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.scenarios._physiology import Physiology
from simulators.scenarios.model import WAVEFORM_METRICS, DeviceSpec, Scenario
from simulators.signals._keyed import keyed_normal, keyed_uniform, stream_key
from simulators.signals.events import Event
from simulators.signals.noise import apply_lead_off, baseline_wander, emg, powerline
from simulators.signals.numerics import daily_reading_times, measure, regular_reading_indices
from simulators.signals.ppg import pulse_amplitudes, render_pulses, respiratory_modulation

__all__ = ["GROUND_TRUTH_KINDS", "Chunk", "ScenarioRun"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

GROUND_TRUTH_KINDS = {"pvc": "pvc_burst"}
"""Timeline type -> ground-truth event kind, where they differ (otherwise the same word)."""

# metric -> (noise sd, resolution, low, high, default interval s or None for daily schedule)
_READING = {
    "heart_rate": (1.0, 1.0, 20.0, 300.0, 1.0),
    "pulse_rate": (1.0, 1.0, 20.0, 300.0, 1.0),
    "spo2": (0.5, 1.0, 50.0, 100.0, 1.0),
    "respiratory_rate": (0.7, 1.0, 2.0, 80.0, 60.0),
    "bp_systolic": (6.0, 1.0, 40.0, 300.0, None),
    "bp_diastolic": (4.0, 1.0, 20.0, 200.0, None),
    "body_temperature": (0.08, 0.1, 30.0, 45.0, 600.0),
    "body_weight": (0.25, 0.1, 0.5, 400.0, None),
    "blood_glucose": (0.15, 0.1, 1.0, 40.0, 300.0),
}
_DEFAULT_SCHEDULE = {"bp": (7.0, 19.0), "body_weight": (7.0,)}
_DEFAULT_FS = {"ecg": 250.0, "ppg": 100.0}
_SCHEDULE_JITTER_S = 900.0
_PULSE_ARRIVAL_S = 0.22
_LEAD_OFF_RAIL_MV = 5.0


@dataclass(frozen=True)
class Chunk:
    """What the devices produced in ``[start_ns, end_ns)``.

    ``numerics``: metric -> (times ns int64, values float64 in the catalogue unit), in delivery
    order. ``waveforms``: metric -> (first sample time ns, rate Hz, values). ``r_peaks_ns`` and
    ``beat_types`` ('N', 'V', 'A') are the true beats inside the window when ECG was rendered.
    ``events``: ground-truth windows (s from run start) that overlap the chunk.
    """

    start_ns: int
    end_ns: int
    numerics: dict[str, tuple[IntArray, FloatArray]]
    waveforms: dict[str, tuple[int, float, FloatArray]] = field(default_factory=dict)
    r_peaks_ns: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    beat_types: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, dtype="<U1"))
    events: list[Event] = field(default_factory=list)


def _first_sample(elapsed_ns: int, fs: int) -> int:
    """Index of the first sample at or after ``elapsed_ns`` for ``fs`` Hz (exact integer maths)."""
    return -((-elapsed_ns * fs) // 1_000_000_000)


class ScenarioRun:
    """A scenario in progress; create with :meth:`Scenario.start`."""

    def __init__(self, scenario: Scenario, start_ns: int, seed: int, *, waveforms: bool = False) -> None:
        self.scenario = scenario
        self.start_ns = int(start_ns)
        self.seed = int(seed)
        self.waveforms = waveforms
        self.physiology = Physiology(scenario, self.seed, self.start_ns / 1e9)
        self._elapsed_ns = 0
        self._events = sorted(
            (
                Event(GROUND_TRUTH_KINDS.get(e.type, e.type), e.start_s, e.end_s)
                for e in scenario.timeline
            ),
            key=lambda event: (event.start_s, event.kind),
        )

    @property
    def elapsed_s(self) -> float:
        """Simulated seconds since the start."""
        return self._elapsed_ns / 1e9

    @property
    def now_ns(self) -> int:
        """Simulated wall-clock time reached, ns since the Unix epoch."""
        return self.start_ns + self._elapsed_ns

    def ground_truth(self) -> list[Event]:
        """Event windows (s from start) begun so far; an ongoing one ends at the present."""
        now = self.elapsed_s
        return [Event(e.kind, e.start_s, min(e.end_s, now)) for e in self._events if e.start_s < now]

    def advance(self, duration_s: float, *, waveforms: bool | None = None) -> Chunk:
        """Produce the next ``duration_s`` seconds; ``waveforms`` overrides the run's default."""
        if duration_s < 0:
            raise ValueError("duration_s must not be negative")
        lo_ns = self._elapsed_ns
        hi_ns = lo_ns + round(duration_s * 1e9)
        self._elapsed_ns = hi_ns
        t_lo, t_hi = lo_ns / 1e9, hi_ns / 1e9
        numerics: dict[str, tuple[IntArray, FloatArray]] = {}
        for device in self.scenario.devices:
            for metric in device.metrics:
                if metric not in WAVEFORM_METRICS:
                    numerics[metric] = self._numeric(device, metric, t_lo, t_hi)
        chunk_waves: dict[str, tuple[int, float, FloatArray]] = {}
        r_peaks = np.zeros(0, dtype=np.int64)
        types = np.zeros(0, dtype="<U1")
        if self.waveforms if waveforms is None else waveforms:
            for device in self.scenario.devices:
                for metric in device.metrics:
                    if metric in WAVEFORM_METRICS:
                        chunk_waves[metric] = self._waveform(device, metric, lo_ns, hi_ns)
            if "ecg" in chunk_waves:
                beats = self.physiology.rhythm.beats(t_lo, t_hi)
                r_peaks = self.start_ns + np.rint(beats.times_s * 1e9).astype(np.int64)
                types = beats.types
        events = [e for e in self._events if e.start_s < t_hi and e.end_s > t_lo]
        return Chunk(self.start_ns + lo_ns, self.start_ns + hi_ns, numerics, chunk_waves, r_peaks, types, events)

    # -- numerics ---------------------------------------------------------------------------------

    def _schedule(self, device: DeviceSpec, metric: str) -> tuple[float | None, tuple[float, ...]]:
        if device.schedule_hours:
            return None, device.schedule_hours
        if device.interval_s is not None:
            return device.interval_s, ()
        family = "bp" if metric.startswith("bp_") else metric
        default = _READING["bp_systolic" if family == "bp" else metric][4]
        return default, _DEFAULT_SCHEDULE.get(family, ())

    def _readings(self, device: DeviceSpec, metric: str, t_lo: float, t_hi: float) -> tuple[FloatArray, IntArray]:
        interval, hours = self._schedule(device, metric)
        if interval is None:
            key = stream_key(f"{device.id}/schedule")
            return daily_reading_times(max(t_lo, 0.0), t_hi, clock_s=self.physiology.clock_s, hours=hours,
                                       jitter_s=_SCHEDULE_JITTER_S, seed=self.seed, key=key)
        ids = regular_reading_indices(max(t_lo, 0.0), t_hi, interval)
        return ids.astype(np.float64) * interval, ids

    def _measured(self, device: DeviceSpec, metric: str, t: FloatArray, ids: IntArray) -> FloatArray:
        if metric == "bp_mean":
            sys = self._measured(device, "bp_systolic", t, ids)
            dia = self._measured(device, "bp_diastolic", t, ids)
            mean: FloatArray = np.round(dia + (sys - dia) / 3.0)
            return mean
        noise_sd, resolution, low, high, _ = _READING[metric]
        noise = keyed_normal(self.seed, stream_key(f"{device.id}/{metric}"), ids)
        level = self.physiology.level(metric, t, ids)
        return measure(level, noise, noise_std=noise_sd, resolution=resolution, low=low, high=high)

    def _numeric(self, device: DeviceSpec, metric: str, t_lo: float, t_hi: float) -> tuple[IntArray, FloatArray]:
        faults = device.imperfections
        late_prob = faults.get("late_prob", 0.0)
        max_delay = faults.get("late_delay_s", 60.0) if late_prob > 0 else 0.0
        t, ids = self._readings(device, metric, t_lo - max_delay, t_hi)
        keep = ~self.physiology.silent(t, device.id)
        t, ids = t[keep], ids[keep]
        delivery = t
        if late_prob > 0:
            late = keyed_uniform(self.seed, stream_key(f"{device.id}/{metric}/late"), ids) < late_prob
            delay = keyed_uniform(self.seed, stream_key(f"{device.id}/{metric}/delay"), ids) * max_delay
            delivery = t + np.where(late, delay, 0.0)
        inside = (delivery >= t_lo) & (delivery < t_hi)
        t, ids, delivery = t[inside], ids[inside], delivery[inside]
        dup_prob = faults.get("duplicate_prob", 0.0)
        if dup_prob > 0:
            copies = np.where(
                keyed_uniform(self.seed, stream_key(f"{device.id}/{metric}/dup"), ids) < dup_prob, 2, 1
            )
            t, ids, delivery = np.repeat(t, copies), np.repeat(ids, copies), np.repeat(delivery, copies)
        order = np.argsort(delivery, kind="stable")
        t, ids = t[order], ids[order]
        values = self._measured(device, metric, t, ids)
        reported = t * (1.0 + faults.get("clock_drift_ppm", 0.0) * 1e-6)
        times_ns = self.start_ns + np.rint(reported * 1e9).astype(np.int64)
        return times_ns, values

    # -- waveforms --------------------------------------------------------------------------------

    def _waveform(self, device: DeviceSpec, metric: str, lo_ns: int, hi_ns: int) -> tuple[int, float, FloatArray]:
        fs = int(device.fs or _DEFAULT_FS[metric])
        n0, n1 = _first_sample(lo_ns, fs), _first_sample(hi_ns, fs)
        t = np.arange(n0, n1, dtype=np.float64) / fs
        phys = self.physiology
        if metric == "ecg":
            values, _ = phys.ecg.render(n0, n1, float(fs))
            values += phys.motion_artifact(t)
            values += self._ecg_noise(device, n1 - n0, fs, n0)
            flat, saturated = phys.lead_off_mask(t, device.id)
            values = apply_lead_off(values, flat, mode="flat")
            values = apply_lead_off(values, saturated, mode="saturated", rail_mv=_LEAD_OFF_RAIL_MV)
        else:
            beats = phys.rhythm.beats(n0 / fs - 1.6, n1 / fs)
            breath = phys.breathing.phase(beats.times_s)
            feet = beats.times_s + _PULSE_ARRIVAL_S + 0.008 * np.sin(2.0 * np.pi * breath)
            typical = 60.0 / np.maximum(phys.heart.rate(beats.times_s), 1.0)
            amps = pulse_amplitudes(beats.rr_s, beats.types, typical)
            values = render_pulses(n0, n1, float(fs), feet, beats.rr_s, amps)
            values = respiratory_modulation(values, phys.breathing.phase(t)) + 2.0 * phys.motion_artifact(t)
        start = self.start_ns + (n0 * 1_000_000_000 + fs // 2) // fs
        return start, float(fs), values

    def _ecg_noise(self, device: DeviceSpec, n: int, fs: int, n0: int) -> FloatArray:
        faults = device.imperfections
        out = np.zeros(n, dtype=np.float64)

        def rng(name: str) -> np.random.Generator:
            # A fresh Generator per call, seeded alike: noise depends on absolute sample index only.
            return np.random.default_rng([self.seed & 0xFFFFFFFF, stream_key(f"{device.id}/{name}")])

        if faults.get("baseline_wander_mv", 0.0) > 0:
            out += baseline_wander(n, fs, amplitude_mv=faults["baseline_wander_mv"], rng=rng("wander"),
                                   start_index=n0)
        if faults.get("powerline_mv", 0.0) > 0:
            out += powerline(n, fs, hz=faults.get("powerline_hz", 50.0), amplitude_mv=faults["powerline_mv"],
                             rng=rng("mains"), start_index=n0)
        if faults.get("emg_mv", 0.0) > 0:
            out += emg(n, fs, amplitude_mv=faults["emg_mv"], rng=rng("emg"), start_index=n0)
        return out
