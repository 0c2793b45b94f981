"""Deadband + swinging door: error bound, exact alerts, heartbeats."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pipeline.compression import SwingingDoorCompressor, reconstruct
from edge.pipeline.thresholds import Thresholds
from vitals import Quality

SECOND = 10**9
NO_LIMITS = Thresholds(None, None)


def _compress(
    values: list[float], *, deviation: float = 0.5, deadband: float = 0.25,
    thresholds: Thresholds = NO_LIMITS, heartbeat_s: float = 1e6, smooth: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    door = SwingingDoorCompressor(deviation=deviation, deadband=deadband,
                                  heartbeat_ns=int(heartbeat_s * SECOND), thresholds=thresholds,
                                  smooth_half_window=smooth)
    for i, value in enumerate(values):
        door.push(i * SECOND, value, 0)
    door.flush(len(values) * SECOND, final=True)
    kept = door.take()
    times, kept_values, quality = (np.array(column) for column in zip(*kept, strict=True))
    return times, kept_values, quality


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(50, 110), min_size=1, max_size=200),
    st.sampled_from([(0.5, 0.25), (1.0, 0.0), (0.0, 0.0), (2.0, 1.0)]),
)
def test_reconstruction_stays_within_the_error_bound(readings: list[int], bounds: tuple[float, float]) -> None:
    deviation, deadband = bounds
    values = [float(v) for v in readings]
    times, kept, _ = _compress(values, deviation=deviation, deadband=deadband)
    rebuilt = reconstruct(times, kept, np.arange(len(values)) * SECOND)
    assert np.max(np.abs(rebuilt - values)) <= 2 * deadband + deviation + 1e-9
    # Kept readings are exact readings.
    assert np.array_equal(kept, np.asarray(values)[times // SECOND])
    assert times[-1] == (len(values) - 1) * SECOND  # final flush sends the newest reading


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(80.0, 100.0, allow_nan=False), min_size=1, max_size=200))
def test_every_threshold_crossing_and_the_recovery_are_kept_exactly(values: list[float]) -> None:
    times, _kept, _ = _compress(values, deviation=2.0, deadband=1.0, thresholds=Thresholds(90.0, None))
    index = times // SECOND
    below = [i for i, v in enumerate(values) if v < 90.0]
    recoveries = [i for i in range(1, len(values)) if values[i - 1] < 90.0 <= values[i]]
    assert set(below) | set(recoveries) <= set(index.tolist())


def test_stable_readings_compress_more_than_tenfold() -> None:
    rng = np.random.default_rng(0)
    values = list(np.round(97.0 + 0.3 * np.sin(np.arange(3600) / 600.0) + rng.normal(0, 0.2, 3600)))
    times, kept, _ = _compress(values, deviation=1.0, deadband=0.0, heartbeat_s=300)
    assert len(values) / len(kept) >= 10
    rebuilt = reconstruct(times, kept, np.arange(len(values)) * SECOND)
    assert np.max(np.abs(rebuilt - values)) <= 1.0


def test_heartbeat_goes_out_at_least_every_period_while_readings_arrive() -> None:
    times, _, quality = _compress([97.0] * 1000, heartbeat_s=300)
    assert times.tolist() == [0, 300 * SECOND, 600 * SECOND, 900 * SECOND, 999 * SECOND]
    heartbeat = int(Quality.HEARTBEAT)
    assert quality.tolist() == [0, heartbeat, heartbeat, heartbeat, 0]


def test_flagged_readings_are_always_kept() -> None:
    door = SwingingDoorCompressor(deviation=5.0, deadband=1.0, heartbeat_ns=10**15, thresholds=NO_LIMITS)
    for i in range(10):
        door.push(i * SECOND, 70.0, int(Quality.RATE_OF_CHANGE) if i == 5 else 0)
    assert [t // SECOND for t, _v, _q in door.take()] == [0, 4, 5]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(85, 100), min_size=1, max_size=200),
    st.sampled_from([(1.0, 0.0, 2), (1.0, 0.0, 1), (2.0, 0.5, 3), (0.0, 0.0, 2)]),
)
def test_smoothed_segments_stay_within_the_bound_of_every_raw_reading(
    readings: list[int], bounds: tuple[float, float, int]
) -> None:
    deviation, deadband, smooth = bounds
    values = [float(v) for v in readings]
    times, kept, _ = _compress(values, deviation=deviation, deadband=deadband, smooth=smooth,
                               thresholds=Thresholds(90.0, None))
    rebuilt = reconstruct(times, kept, np.arange(len(values)) * SECOND)
    assert np.max(np.abs(rebuilt - np.array(values))) <= 2 * deadband + deviation + 1e-9
    # Every reading below the threshold, and the first back above, is kept exactly as measured.
    by_time = dict(zip((times // SECOND).tolist(), kept.tolist(), strict=True))
    for i, value in enumerate(values):
        if value < 90.0 or (i and values[i - 1] < 90.0):
            assert by_time[i] == value


def test_smoothing_lets_a_flickering_stable_spo2_compress_more_than_tenfold() -> None:
    rng = np.random.default_rng(7)
    values = np.rint(96.3 + rng.normal(0.0, 0.5, 3600)).tolist()
    plain, _, _ = _compress(values, deviation=1.0, deadband=0.0, heartbeat_s=300)
    smoothed, kept, _ = _compress(values, deviation=1.0, deadband=0.0, heartbeat_s=300, smooth=2)
    assert len(values) / smoothed.size >= 10 > len(values) / plain.size
    assert np.array_equal(kept, np.rint(kept))  # medians of 5 integer readings stay on the grid
    rebuilt = reconstruct(smoothed, kept, np.arange(len(values)) * SECOND)
    assert np.max(np.abs(rebuilt - np.array(values))) <= 1.0


def test_a_threshold_crossing_is_kept_at_once_while_smoothing_holds_readings_back() -> None:
    door = SwingingDoorCompressor(deviation=1.0, deadband=0.0, heartbeat_ns=300 * SECOND,
                                  thresholds=Thresholds(90.0, None), smooth_half_window=2)
    for i, value in enumerate([96.0, 96.0, 97.0, 96.0]):
        door.push(i * SECOND, value, 0)
    assert door.take() == [(0, 96.0, 0)]
    assert door.pending == 2 + 1  # two waiting for their median, one candidate end
    door.push(4 * SECOND, 88.0, 0)
    kept = door.take()
    assert kept[-1] == (4 * SECOND, 88.0, 0)  # the alert reading goes out with the push that brought it
    assert door.pending == 0


def test_a_reading_after_a_long_gap_then_a_tick_is_kept_once_not_a_crash() -> None:
    # The reading after the gap waits for its median; the tick releases it, it is due as a heartbeat
    # by itself, and nothing is left to end the segment with.
    compressor = SwingingDoorCompressor(deviation=1.0, deadband=0.0, heartbeat_ns=300 * SECOND,
                                        thresholds=Thresholds(90.0, None), smooth_half_window=2)
    for second in range(10):
        compressor.push(second * SECOND, 97.0, 0)
    compressor.flush(11 * SECOND)
    compressor.push(1000 * SECOND, 97.0, 0)
    compressor.flush(1001 * SECOND)
    kept = compressor.take()
    assert kept[-1] == (1000 * SECOND, 97.0, int(Quality.HEARTBEAT))
    assert [t for t, _v, _q in kept].count(1000 * SECOND) == 1
    compressor.flush(2000 * SECOND, final=True)
    assert compressor.take() == [] and compressor.pending == 0
