"""Statistical and ground-truth checks of the signal models in simulators.signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from simulators.signals import Episode, Event, noise, numerics, simulate_ecg, simulate_ppg
from simulators.signals.ecg import render_beats
from simulators.signals.rhythm import Beats, RateModel, RhythmModel


def _rr(sim_r_peaks: np.ndarray, fs: float) -> np.ndarray:
    return np.diff(sim_r_peaks) / fs


def _lf_hf(r_peaks: np.ndarray, fs: float) -> float:
    times = r_peaks[1:] / fs
    rr = np.diff(r_peaks) / fs
    grid = np.arange(times[0], times[-1], 0.25)
    tachogram = np.interp(grid, times, rr)
    freqs, power = sps.welch(tachogram - tachogram.mean(), fs=4.0, nperseg=512)
    lf = power[(freqs >= 0.04) & (freqs < 0.15)].sum()
    hf = power[(freqs >= 0.15) & (freqs < 0.4)].sum()
    return float(lf / hf)


@pytest.fixture(scope="module")
def sinus() -> object:
    return simulate_ecg(300.0, 250.0, heart_rate=72.0, heart_rate_std=4.0, lf_hf_ratio=1.5, seed=7)


def test_heart_rate_mean_and_spread(sinus: object) -> None:
    hr = 60.0 / _rr(sinus.r_peaks, sinus.fs)  # type: ignore[attr-defined]
    assert abs(hr.mean() - 72.0) < 2.0
    assert 2.5 < hr.std() < 5.5
    assert len(sinus.r_peaks) == pytest.approx(300 * 72 / 60, rel=0.05)  # type: ignore[attr-defined]


@pytest.mark.parametrize("ratio", [0.5, 1.5, 4.0])
def test_lf_hf_ratio_in_range(ratio: float) -> None:
    sim = simulate_ecg(300.0, 125.0, heart_rate=65.0, heart_rate_std=4.0, lf_hf_ratio=ratio, seed=3)
    measured = _lf_hf(sim.r_peaks, sim.fs)
    assert ratio / 2.5 < measured < ratio * 2.5


def test_af_rr_irregularity_clearly_above_sinus(sinus: object) -> None:
    af = simulate_ecg(300.0, 250.0, heart_rate=95.0, rhythm="af", seed=7)
    rr_af = _rr(af.r_peaks, af.fs)
    rr_sinus = _rr(sinus.r_peaks, sinus.fs)  # type: ignore[attr-defined]
    cv_af = rr_af.std() / rr_af.mean()
    cv_sinus = rr_sinus.std() / rr_sinus.mean()
    assert cv_af > 0.15
    assert cv_af > 2.5 * cv_sinus
    assert set(af.beat_types.tolist()) == {"A"}
    assert af.events == [Event("af", 0.0, 300.0)]
    assert af.events[0] == ("af", 0.0, 300.0)


def test_r_peaks_sit_on_the_main_deflection_of_clean_ecg() -> None:
    for rhythm, pvc in (("sinus", 6.0), ("af", 0.0)):
        sim = simulate_ecg(120.0, 500.0, heart_rate=80.0, rhythm=rhythm, pvc_per_min=pvc, seed=11)
        for peak in sim.r_peaks:
            lo, hi = max(peak - 2, 0), min(peak + 3, len(sim.signal))
            window = np.abs(sim.signal[max(peak - 25, 0) : peak + 26])
            assert np.abs(sim.signal[lo:hi]).max() == pytest.approx(window.max())


def _qrs_width_ms(x: np.ndarray, r: int, fs: float) -> float:
    """QRS duration: the span around the R peak where the ECG stays beyond 5 % of the R amplitude
    (dips shorter than 20 ms, where the QRS crosses zero, stay inside)."""
    above = np.abs(x) > 0.05 * abs(x[r])
    quiet = round(0.02 * fs)
    lo = hi = r
    while lo > quiet and above[lo - quiet:lo].any():
        lo -= 1
    while hi + 1 + quiet < x.size and above[hi + 1:hi + 1 + quiet].any():
        hi += 1
    return 1e3 * (hi - lo) / fs


def _one_beat(kind: str, focus: int, fs: float = 1000.0) -> np.ndarray:
    # One beat after a long cycle, so its T wave stands well clear of the QRS.
    beats = Beats(np.array([1.0]), np.array([kind]), np.array([1.2]), np.array([focus]))
    return render_beats(0, round(2.5 * fs), fs, beats, np.ones(1))


def test_ventricular_qrs_is_wide_large_and_has_a_discordant_t_wave() -> None:
    fs = 1000.0
    sinus = _one_beat("N", 0)
    assert 80.0 <= _qrs_width_ms(sinus, 1000, fs) <= 110.0
    polarities = set()
    for focus in (1, 2, 3):
        x = _one_beat("V", focus)
        assert 120.0 <= _qrs_width_ms(x, 1000, fs) <= 200.0, focus
        main = x[1000]
        assert abs(main) > 1.25 * abs(sinus[1000])  # larger than the sinus QRS
        assert np.abs(x[1000 - 60:1000 + 60]).max() == pytest.approx(abs(main), rel=0.01)  # main deflection at R
        assert np.abs(x[700:880]).max() < 0.01 < 0.05 < sinus[700:880].max()  # no P wave (the sinus beat has one)
        t_wave = x[1200:1600]
        t_peak = t_wave[np.argmax(np.abs(t_wave))]
        assert abs(t_peak) > 0.2 and np.sign(t_peak) == -np.sign(main)  # discordant
        polarities.add(float(np.sign(main)))
    assert polarities == {1.0, -1.0}  # upright and inverted foci


def test_pvcs_come_alone_in_couplets_bigeminy_and_trigeminy_from_several_foci() -> None:
    sim = simulate_ecg(1800.0, 250.0, heart_rate=70.0, heart_rate_std=1.0, pvc_per_min=6.0, pvc_foci=3, seed=3)
    pattern = "".join(sim.beat_types.tolist())
    assert "NVVN" in pattern  # couplet
    assert "VVV" not in pattern  # never a run of three (ventricular tachycardia)
    assert "NVNVNVN" in pattern  # bigeminy
    assert "NNVNNVNNVNN" in pattern  # trigeminy
    assert "NVN" in pattern  # alone
    v = sim.beat_types == "V"
    assert set(np.unique(sim.beat_foci[v]).tolist()) == {1, 2, 3}
    assert np.all(sim.beat_foci[~v] == 0)
    assert 4.0 * 30 < v.sum() < 8.0 * 30  # about 6 a minute


def test_pvcs_are_premature_with_full_compensatory_pause() -> None:
    sim = simulate_ecg(600.0, 250.0, heart_rate=70.0, heart_rate_std=1.0, pvc_per_min=3.0, seed=5)
    types = sim.beat_types
    rr = np.diff(sim.r_peaks) / sim.fs
    cycle = 60.0 / 70.0
    # Isolated PVCs: the sinus beats around one are two cycles apart (the sinus node keeps time).
    at = np.array([i for i in range(1, len(types) - 1) if types[i - 1] == "N" == types[i + 1] and types[i] == "V"])
    assert 10 < len(at) < 60
    coupling, pause = rr[at - 1], rr[at]
    assert np.all(coupling < 0.75 * np.median(rr))
    assert np.all(pause > 1.2 * cycle)
    assert np.all(coupling + pause == pytest.approx(2 * cycle, rel=0.12))
    # Couplets: the sinus beats around them are three cycles apart.
    pairs = np.array([i for i in range(1, len(types) - 2) if types[i - 1] == "N" == types[i + 2]
                      and types[i] == "V" == types[i + 1]])
    if pairs.size:
        assert np.all(rr[pairs - 1] + rr[pairs] + rr[pairs + 1] == pytest.approx(3 * cycle, rel=0.12))


def test_pvcs_are_the_same_in_any_window() -> None:
    model = RhythmModel(RateModel(75.0), seed=9, pvc_per_min=10.0, pvc_foci=3)
    whole = model.beats(0.0, 300.0)
    part = model.beats(97.3, 181.9)
    inside = (whole.times_s >= 97.3) & (whole.times_s < 181.9)
    assert np.array_equal(part.times_s, whole.times_s[inside])
    assert np.array_equal(part.types, whole.types[inside])
    assert np.array_equal(part.foci, whole.foci[inside])


def test_rhythm_rejects_a_bad_number_of_foci() -> None:
    with pytest.raises(ValueError, match="pvc_foci"):
        RhythmModel(RateModel(75.0), seed=1, pvc_foci=0)


def test_ecg_is_deterministic_by_seed() -> None:
    a = simulate_ecg(20.0, 250.0, pvc_per_min=4.0, seed=1)
    b = simulate_ecg(20.0, 250.0, pvc_per_min=4.0, seed=1)
    c = simulate_ecg(20.0, 250.0, pvc_per_min=4.0, seed=2)
    assert np.array_equal(a.signal, b.signal)
    assert np.array_equal(a.r_peaks, b.r_peaks)
    assert np.array_equal(a.beat_types, b.beat_types)
    assert not np.array_equal(a.signal, c.signal)
    assert a.signal.dtype == np.float64
    assert len(a.signal) == 5000


def test_simulate_ecg_rejects_unknown_rhythm() -> None:
    with pytest.raises(ValueError, match="rhythm"):
        simulate_ecg(10.0, 250.0, rhythm="flutter")


def test_ppg_feet_follow_r_peaks_with_dicrotic_notch() -> None:
    ecg = simulate_ecg(60.0, 250.0, heart_rate=60.0, heart_rate_std=1.0, seed=2)
    r_times = ecg.r_peaks / ecg.fs
    ppg = simulate_ppg(r_times, 60.0, 250.0, seed=2, pulse_arrival_s=0.25, respiratory_rate=12.0)
    delay = ppg.foot_times_s - r_times
    assert np.allclose(delay, 0.25, atol=0.03)
    # Between the systolic peak and the next foot the pulse has a dip then a second hump (notch).
    notches = 0
    for foot, peak in zip(ppg.foot_times_s[2:-2], ppg.peak_times_s[2:-2], strict=True):
        seg = ppg.signal[int(peak * 250) : int((foot + 0.7) * 250)]
        d = np.diff(seg)
        notches += int(np.any((d[:-1] < 0) & (d[1:] >= 0)))
    assert notches >= 0.9 * (len(ppg.foot_times_s) - 4)
    again = simulate_ppg(r_times, 60.0, 250.0, seed=2, pulse_arrival_s=0.25, respiratory_rate=12.0)
    assert np.array_equal(ppg.signal, again.signal)


def test_spo2_within_bounds_and_desaturation() -> None:
    drop = Episode(1800.0, 1800.0, 10.0, 300.0)
    series = numerics.simulate_spo2(3 * 3600.0, baseline_pct=96.0, desaturations=[drop], seed=4)
    assert series.values.min() >= 50.0
    assert series.values.max() <= 100.0
    before = series.values[series.times_s < 1800.0]
    during = series.values[(series.times_s > 2200.0) & (series.times_s < 3200.0)]
    assert abs(before.mean() - 96.0) < 1.0
    assert during.max() < 90.0
    assert np.all(series.values == np.round(series.values))
    assert series.events == [Event("hypoxia", 1800.0, 3600.0)]


def test_slow_vitals_shapes_and_events() -> None:
    week = 7 * 86400.0
    bp = numerics.simulate_blood_pressure(week, rises=[Episode(2 * 86400.0, 5 * 86400.0, 30.0, 86400.0)])
    sys = bp["bp_systolic"]
    assert len(sys.times_s) == 14
    assert np.all(sys.values == np.round(sys.values))
    assert sys.values[-4:].mean() > sys.values[:4].mean() + 15.0
    temp = numerics.simulate_body_temperature(2 * 86400.0, fevers=[Episode(86400.0, 43200.0, 1.5, 3600.0)])
    febrile = temp.values[(temp.times_s > 86400 + 7200) & (temp.times_s < 86400 + 36000)]
    assert febrile.min() > 37.5
    assert temp.values[temp.times_s < 80000].max() < 37.6
    weight = numerics.simulate_body_weight(week, baseline_kg=80.0,
                                           gains=[Episode(2 * 86400.0, 10 * 86400.0, 3.0, 3 * 86400.0)])
    assert len(weight.times_s) == 7
    assert weight.values[-1] - weight.values[0] > 2.0
    glucose = numerics.simulate_glucose(86400.0, drops=[Episode(3 * 3600.0, 3600.0, 4.0, 900.0)])
    assert len(glucose.times_s) == 288
    assert glucose.values.min() < 3.9
    assert glucose.values.max() > 7.0
    assert glucose.events == [Event("hypoglycaemia", 10800.0, 14400.0)]
    hr = numerics.simulate_heart_rate(600.0, heart_rate=65.0, heart_rate_std=3.0)
    assert abs(hr.values.mean() - 65.0) < 2.0
    rr = numerics.simulate_respiratory_rate(86400.0, respiratory_rate=16.0)
    assert abs(rr.values.mean() - 16.0) < 1.0


def test_episode_integral_matches_numerical_integration() -> None:
    episode = Episode(10.0, 50.0, 3.0, 12.0)
    t = np.linspace(0.0, 80.0, 80001)
    numeric = np.concatenate([[0.0], np.cumsum((episode.value(t[1:]) + episode.value(t[:-1])) / 2 * np.diff(t))])
    assert np.allclose(episode.integral(t), numeric, atol=1e-6)
    step = Episode(10.0, 5.0, 2.0)
    assert step.integral(np.array([0.0, 12.0, 100.0])).tolist() == [0.0, 4.0, 10.0]


def test_waveform_noise_components() -> None:
    rng = np.random.default_rng
    n, fs = 5000, 250.0
    wander = noise.baseline_wander(n, fs, amplitude_mv=0.2, rng=rng(1))
    assert 0.05 < np.abs(wander).max() < 0.45
    mains = noise.powerline(n, fs, hz=50.0, amplitude_mv=0.05, rng=rng(1))
    spectrum = np.abs(np.fft.rfft(mains))
    assert np.fft.rfftfreq(n, 1 / fs)[spectrum.argmax()] == pytest.approx(50.0)
    muscle = noise.emg(n, fs, amplitude_mv=0.02, rng=rng(1))
    assert muscle.std() == pytest.approx(0.02, rel=0.1)
    # Slices drawn with Generators seeded alike join without a seam.
    whole = noise.emg(2000, fs, amplitude_mv=0.02, rng=rng(3))
    parts = np.concatenate([noise.emg(700, fs, amplitude_mv=0.02, rng=rng(3)),
                            noise.emg(1300, fs, amplitude_mv=0.02, rng=rng(3), start_index=700)])
    assert np.allclose(whole, parts)
    artifact, mask = noise.motion_artifacts(n, fs, amplitude_mv=1.0, rng=rng(2), bursts_per_hour=600.0)
    assert mask.any()
    assert np.all(artifact[~mask & ~np.roll(mask, 20) & ~np.roll(mask, -20)] == 0.0)
    off = noise.lead_off(n, fs, rng=rng(5), episodes_per_hour=400.0, mean_duration_s=2.0)
    clean = np.ones(n)
    assert np.all(noise.apply_lead_off(clean, off, mode="flat")[off] == 0.0)
    assert np.all(noise.apply_lead_off(clean, off, mode="saturated", rail_mv=5.0)[off] == 5.0)
    assert np.all(noise.apply_lead_off(clean, off)[~off] == 1.0)


def test_reading_faults() -> None:
    t = np.arange(0.0, 3600.0, 1.0)
    v = np.arange(len(t), dtype=np.float64)
    keep = noise.dropouts(t, rng=np.random.default_rng(1), gaps_per_day=200.0, mean_gap_s=60.0)
    assert 0 < (~keep).sum() < len(t)
    assert noise.clock_drift(np.array([0.0, 1e6]), ppm=50.0, offset_s=2.0).tolist() == pytest.approx([2.0, 1e6 + 52.0])
    out = noise.duplicate_and_late(t, v, rng=np.random.default_rng(2), duplicate_prob=0.05, late_prob=0.05,
                                   max_delay_s=30.0)
    assert len(out.times_s) > len(t)
    assert np.all(np.diff(out.delivery_s) >= 0)
    assert np.any(np.diff(out.times_s) < 0)  # some readings arrive after newer ones
    assert np.all(out.delivery_s >= out.times_s)
