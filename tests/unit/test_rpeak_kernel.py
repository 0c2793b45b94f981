"""The R-peak detector's compiled fast paths give exactly what its Python and numpy paths give.

The project builds the kernel (``pip install`` compiles it), so these tests import it directly: a
build that silently fell back to Python fails here instead of passing slowly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge.pipeline.ecg as ecg
from edge.pipeline import _rpeak_kernel
from edge.pipeline._envelope import dominant
from edge.pipeline.ecg import RPeakDetector, detect_r_peaks
from simulators.signals import noise, simulate_ecg

FS = 250.0


def _record(condition: str, seed: int, seconds: float = 90.0) -> np.ndarray:
    if condition == "af":
        sim = simulate_ecg(seconds, FS, heart_rate=85, rhythm="af", seed=seed)
    elif condition == "ectopic":
        sim = simulate_ecg(seconds, FS, heart_rate=72, pvc_per_min=8, seed=seed)
    else:
        sim = simulate_ecg(seconds, FS, heart_rate=60 + 7 * seed, seed=seed)
    signal: np.ndarray = sim.signal
    if condition == "noisy":
        rng = np.random.default_rng(seed)
        n = signal.size
        motion, _ = noise.motion_artifacts(n, FS, amplitude_mv=1.0, rng=rng, bursts_per_hour=120)
        signal = (signal + noise.baseline_wander(n, FS, amplitude_mv=0.8, rng=rng)
                  + noise.powerline(n, FS, amplitude_mv=0.2, rng=rng)
                  + noise.emg(n, FS, amplitude_mv=0.12, rng=rng) + motion)
    return signal


def _python_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Detectors made from here on run without the kernel (as a build without a compiler does)."""
    monkeypatch.setattr(ecg, "_rpeak_kernel", None)


def _in_chunks(signal: np.ndarray, sizes: list[int]) -> np.ndarray:
    detector = RPeakDetector(FS)
    parts, start, turn = [], 0, 0
    while start < signal.size:
        size = sizes[turn % len(sizes)]
        parts.append(detector.push(signal[start:start + size]))
        start += size
        turn += 1
    parts.append(detector.finish())
    return np.concatenate(parts)


@pytest.mark.parametrize("condition", ["clean", "noisy", "af", "ectopic"])
def test_kernel_and_python_find_the_same_peaks(condition: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in (1, 2):
        signal = _record(condition, seed)
        fast = detect_r_peaks(signal, FS)
        fast_chunked = _in_chunks(signal, [250])
        with monkeypatch.context() as patch:
            _python_only(patch)
            slow = detect_r_peaks(signal, FS)
            slow_chunked = _in_chunks(signal, [250])
        assert fast.size > 80
        assert np.array_equal(fast, slow)
        assert np.array_equal(fast_chunked, fast)
        assert np.array_equal(slow_chunked, fast)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 1500), min_size=1, max_size=12), st.sampled_from(["noisy", "ectopic"]),
       st.booleans())
def test_any_chunks_give_the_one_pass_peaks(sizes: list[int], condition: str, compiled: bool) -> None:
    # Chunk sizes cycle, so the first push may end anywhere in the learning seconds, where the
    # motion gate is not warm yet.
    signal = _record(condition, 3, seconds=40.0)
    with pytest.MonkeyPatch.context() as patch:
        if not compiled:
            _python_only(patch)
        assert np.array_equal(_in_chunks(signal, sizes), detect_r_peaks(signal, FS))


def _envelope(steps: list[tuple[int, float]]) -> np.ndarray:
    """A piecewise-linear envelope through the given (spacing, height) points: humps, plateaus."""
    points = np.cumsum([step for step, _ in steps])
    heights = np.array([height for _, height in steps])
    return np.interp(np.arange(points[-1] + 2), points, heights)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.one_of(st.floats(-1.0, 10.0), st.just(0.0), st.just(3.0))),
                min_size=2, max_size=80),
       st.integers(1, 30), st.integers(0, 100), st.integers(0, 400), st.booleans())
def test_hump_search_kernel_matches_python(steps: list[tuple[int, float]], radius: int, first: int, last: int,
                                           with_nan: bool) -> None:
    values = _envelope(steps)
    if with_nan:
        values[values.size // 2] = np.nan
    lo, hi = 1, values.size - 1
    middle = values[lo:hi]
    humps = np.flatnonzero((middle > values[lo - 1:hi - 1]) & (middle >= values[lo + 1:hi + 1]))
    heights = middle[humps]
    chosen = dominant(humps.tolist(), heights.tolist(), radius, first, last)
    room = (hi - lo + 1) // 2 + 1
    out_index, out_height = np.empty(room, dtype=np.int64), np.empty(room)
    kept = _rpeak_kernel.humps(values, lo, hi, first, last, radius, out_index, out_height)
    assert out_index[:kept].tolist() == humps[chosen].tolist()
    assert out_height[:kept].tolist() == heights[chosen].tolist()


def test_hump_search_kernel_rejects_bad_buffers() -> None:
    values = np.zeros(20)
    out_index, out_height = np.empty(11, dtype=np.int64), np.empty(11)
    with pytest.raises(TypeError, match="float64"):
        _rpeak_kernel.humps(values.astype(np.float32), 1, 19, 0, 18, 3, out_index, out_height)
    with pytest.raises(TypeError, match="int64"):
        _rpeak_kernel.humps(values, 1, 19, 0, 18, 3, out_index.astype(np.int32), out_height)
    with pytest.raises(ValueError, match="too short"):
        _rpeak_kernel.humps(values, 1, 19, 0, 18, 3, out_index[:3], out_height)
    with pytest.raises(IndexError):
        _rpeak_kernel.humps(values, 1, 20, 0, 18, 3, out_index, out_height)
    with pytest.raises(TypeError):
        _rpeak_kernel.humps(values[::2].copy().reshape(2, 5), 1, 4, 0, 3, 3, out_index, out_height)


_candidate = st.tuples(
    st.integers(1, 700),  # gap to the previous hump, input samples
    st.floats(0.0, 4.0),  # height
    st.floats(0.0, 4.0),  # squared slope
    st.sampled_from([None, False, True]),  # burst flag
)


def _judged(candidates: list[tuple[int, float, int, float, bool | None]], compiled: bool) -> tuple[object, ...]:
    detector = RPeakDetector(FS)
    if not compiled:
        detector._kernel = None
    detector._learning = None
    detector._spk, detector._npk, detector._slope_level = 2.0, 0.2, 1.0
    detector._last_beat = (0, 2.0, -1, 1.0, False)
    detector._rr, detector._rr_ordered, detector._rr_average = [210, 200], [200, 210], 205.0
    detector._judge(list(candidates))
    return (detector._accepted, detector._since_beat, detector._waiting, detector._searched_back,
            detector._spk, detector._npk, detector._slope_level, detector._last_beat, detector._rr,
            detector._rr_ordered, detector._rr_average)


@settings(max_examples=300, deadline=None)
@given(st.lists(_candidate, max_size=60))
def test_judgement_kernel_matches_python(raw: list[tuple[int, float, float, bool | None]]) -> None:
    # Random humps: beats, T waves, noise, gaps long enough for search-back and flags still unknown.
    candidates, index = [], 0
    for gap, height, slope, burst in raw:
        index += gap
        candidates.append((index, height, -1, slope, burst))
    assert _judged(candidates, compiled=True) == _judged(candidates, compiled=False)


def test_judgement_kernel_rejects_bad_candidates() -> None:
    state = (2.0, 0.2, (0, 2.0, -1, 1.0, False), 1.0, 205.0)
    constants = (50, 90, 0.25, 0.8, 1.66, 0.45)
    with pytest.raises(TypeError, match="5-tuple"):
        _rpeak_kernel.run([(1, 2.0)], 0, state, [], [], [], [], constants)
    with pytest.raises(TypeError):
        _rpeak_kernel.run([(1, "high", -1, 1.0, None)], 0, state, [], [], [], [], constants)
    with pytest.raises(ValueError, match="more than 8"):
        _rpeak_kernel.run([], 0, state, list(range(9)), list(range(9)), [], [], constants)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(-3.0, 3.0), st.sampled_from([0.0, 1.0, -1.0, np.nan])), min_size=1,
                max_size=40),
       st.integers(1, 6), st.booleans())
def test_placement_kernel_matches_python(samples: list[float], windows: int, prefiltered: bool) -> None:
    # Ties, flat stretches and NaN included: the first of equal values wins, a NaN outright.
    x = np.array(samples * windows)
    width = len(samples)
    starts = np.arange(windows, dtype=np.int64) * width
    detector = RPeakDetector(FS, prefiltered=prefiltered)
    expected = detector._deflection(np.stack([x[s:s + width] for s in starts]))
    out = np.empty(windows, dtype=np.int64)
    _rpeak_kernel.deflections(x, starts, width, prefiltered, out)
    assert out.tolist() == expected.tolist()


def test_placement_kernel_rejects_windows_outside_the_samples() -> None:
    out = np.empty(2, dtype=np.int64)
    with pytest.raises(IndexError, match="outside"):
        _rpeak_kernel.deflections(np.zeros(10), np.array([0, 5]), 6, False, out)
    with pytest.raises(IndexError, match="outside"):
        _rpeak_kernel.deflections(np.zeros(10), np.array([-1, 2]), 6, False, out)
    with pytest.raises(ValueError, match="width"):
        _rpeak_kernel.deflections(np.zeros(10), np.array([0, 2]), 0, False, out)


@pytest.mark.parametrize("compiled", [True, False])
def test_search_back_beats_placed_before_their_samples_went(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Frequent premature beats in uneven chunks: a noise hump placed while its samples aged out is
    # later taken back as a beat. Its place is known already; its (gone) window is not read again
    # (reading it used to wrap round to the wrong samples, harmlessly only by luck).
    if not compiled:
        _python_only(monkeypatch)
    aged: list[int] = []
    place_aging = RPeakDetector._place_aging

    def counting(self: RPeakDetector, keep_from: int) -> None:
        place_aging(self, keep_from)
        aged.append(sum(c[2] != -1 for c in self._since_beat))

    monkeypatch.setattr(RPeakDetector, "_place_aging", counting)
    signal = simulate_ecg(300.0, FS, heart_rate=72, pvc_per_min=8, seed=1).signal
    sizes = np.random.default_rng(1).integers(1, 2000, 400).tolist()
    assert np.array_equal(_in_chunks(signal, sizes), detect_r_peaks(signal, FS))
    assert sum(aged) > 0


_coefficient = st.floats(-2.0, 2.0, allow_subnormal=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(_coefficient, min_size=1, max_size=10), st.lists(_coefficient, min_size=2, max_size=10),
       st.floats(0.25, 3.0), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_filter_kernel_gives_scipy_lfilter_bit_for_bit(b: list[float], a: list[float], a0: float, n: int,
                                                      seed: int) -> None:
    from scipy import signal as sps

    # Recursive filters (scipy runs a one-coefficient ``a`` as a convolution: other arithmetic) on
    # at least one sample (for none, scipy's final state is not defined).
    rng = np.random.default_rng(seed)
    b_array, a_array = np.array(b), np.array([a0, *a[1:]])
    x = rng.standard_normal(n)
    zi = rng.standard_normal(max(len(b), len(a)) - 1)
    expected, expected_zf = sps.lfilter(b_array, a_array, x, zi=zi)
    y, zf = np.empty(n), zi.copy()
    _rpeak_kernel.lfilter(b_array, a_array, x, y, zf)
    # Unstable random filters overflow: the same infinities and NaNs in the same places.
    assert np.array_equal(y, expected, equal_nan=True)
    assert np.array_equal(zf, expected_zf, equal_nan=True)


def test_filter_kernel_rejects_what_it_cannot_run() -> None:
    x, y = np.ones(5), np.empty(5)
    with pytest.raises(ValueError, match="a\\[0\\]"):
        _rpeak_kernel.lfilter(np.ones(3), np.array([0.0, 1.0, 1.0]), x, y, np.zeros(2))
    with pytest.raises(ValueError, match="1 to 16"):
        _rpeak_kernel.lfilter(np.ones(17), np.ones(2), x, y, np.zeros(16))
    with pytest.raises(ValueError, match="two"):
        _rpeak_kernel.lfilter(np.ones(3), np.ones(1), x, y, np.zeros(2))
    with pytest.raises(ValueError, match="z needs"):
        _rpeak_kernel.lfilter(np.ones(3), np.ones(3), x, y, np.zeros(3))
    with pytest.raises(ValueError, match="room"):
        _rpeak_kernel.lfilter(np.ones(3), np.ones(3), x, y[:2], np.zeros(2))
