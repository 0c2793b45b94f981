"""The patient's threshold levels from the cloud: compression keeps every crossing exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pipeline import Pipeline
from edge.pipeline.compression import SwingingDoorCompressor
from edge.pipeline.thresholds import Thresholds
from vitals import Stream

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def step_crossings(times: list[int], values: list[float], levels: list[float]) -> list[tuple[int, float, bool]]:
    """What a rule sees holding each reading until the next: every (time, level, now below?) change,
    for both a strict (<) and a non-strict (<=) comparison with each level."""
    events: list[tuple[int, float, bool]] = []
    state: dict[tuple[float, bool], bool] = {}
    for time_ns, value in zip(times, values, strict=True):
        for level in levels:
            for strict in (True, False):
                below = value < level if strict else value <= level
                if state.get((level, strict)) != below:
                    state[(level, strict)] = below
                    events.append((time_ns, level, below))
    return events


def compress(values: list[float], levels: list[float], *, qualities: list[int] | None = None,
             deadband: float = 0.0, smooth: int = 0, low: float | None = None) -> tuple[list[int], list[float]]:
    compressor = SwingingDoorCompressor(deviation=1.0, deadband=deadband, heartbeat_ns=120 * SECOND,
                                        thresholds=Thresholds(low, None, levels), smooth_half_window=smooth)
    for index, value in enumerate(values):
        compressor.push(T0 + index * SECOND, value, (qualities or [0] * len(values))[index])
    compressor.flush(T0 + len(values) * SECOND, final=True)
    kept = compressor.take()
    return [t for t, _v, _q in kept], [v for _t, v, _q in kept]


# Readings a step or two around the levels (where medians and deadbands could blur a crossing), or anywhere.
readings = st.one_of(
    st.lists(st.integers(89, 95).map(float), min_size=1, max_size=300),
    st.lists(st.one_of(st.integers(80, 100).map(float), st.floats(80, 100, allow_nan=False)), min_size=1,
             max_size=300),
)
level_sets = st.one_of(
    st.lists(st.sampled_from([90.5, 91.0, 91.5, 92.0, 92.5, 93.0]), min_size=1, max_size=3),
    st.lists(st.one_of(st.integers(82, 98).map(float), st.floats(80, 100, allow_nan=False)), min_size=1,
             max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(values=readings, levels=level_sets, deadband=st.sampled_from([0.0, 0.5, 2.0]),
       smooth=st.sampled_from([0, 2]), low=st.sampled_from([None, 90.0]))
def test_compressed_readings_cross_every_level_at_the_same_times_as_the_raw_ones(
    values: list[float], levels: list[float], deadband: float, smooth: int, low: float | None
) -> None:
    times = [T0 + i * SECOND for i in range(len(values))]
    kept_times, kept_values = compress(values, levels, deadband=deadband, smooth=smooth, low=low)
    assert step_crossings(kept_times, kept_values, levels) == step_crossings(times, values, levels)


def test_a_level_crossing_is_kept_where_the_default_band_would_drop_it() -> None:
    # 93, 92, 91, 92, 93 ... lies inside the default band (spo2 < 90) and within one step of a line.
    values = [93.0, 92.0, 91.0, 92.0, 93.0, 92.0, 91.0]
    plain_times, _ = compress(values, [])
    level_times, level_values = compress(values, [92.0])
    assert len(plain_times) < len(level_times)
    assert step_crossings(level_times, level_values, [92.0]) == step_crossings(
        [T0 + i * SECOND for i in range(len(values))], values, [92.0])


def test_the_pipeline_applies_levels_to_chains_built_before_and_after() -> None:
    values = [95.0, 94.0, 93.0, 92.0, 91.0, 92.0, 93.0, 94.0, 95.0] * 3
    times = [T0 + i * SECOND for i in range(len(values))]

    def run(pipeline: Pipeline) -> tuple[list[int], list[float]]:
        out = pipeline.process(Stream("spo2", "%", times, values, [0] * len(values)))
        out += pipeline.process(Stream("heart_rate", "/min", times, [v - 20 for v in values], [0] * len(values)))
        out += pipeline.flush(times[-1] + SECOND, final=True)
        spo2 = [s for s in out if s.metric == "spo2"]
        return ([t for s in spo2 for t in s.times_ns.tolist()], [v for s in spo2 for v in s.values.tolist()])

    before = Pipeline({"spo2": {"stages": ["swinging_door"]}})  # the chain exists before the levels arrive
    before.set_threshold_levels({"spo2": (92.5,), "heart_rate": (72.5,)})
    after = Pipeline({"heart_rate": {"stages": ["swinging_door"]}})  # spo2's chain is built after
    after.set_threshold_levels({"spo2": (92.5,)})
    # (spo2's default chain has a spike filter; the crossings of what it passes on are kept.)
    for pipeline in (before, after):
        kept_times, kept_values = run(pipeline)
        assert step_crossings(kept_times, kept_values, [92.5]) == step_crossings(times, values, [92.5])
    cleared = Pipeline({"spo2": {"stages": ["swinging_door"]}})
    cleared.set_threshold_levels({"spo2": (92.5,)})
    cleared.set_threshold_levels({})
    kept_times, kept_values = run(cleared)
    assert step_crossings(kept_times, kept_values, [92.5]) != step_crossings(times, values, [92.5])


def test_band_tells_below_on_and_above_each_level() -> None:
    thresholds = Thresholds(None, None, [92.0, 88.0, 92.0])
    assert thresholds.levels == (88.0, 92.0)
    assert [thresholds.band(v) for v in (87.0, 88.0, 90.0, 92.0, 93.0)] == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]
    assert thresholds.with_levels([]).levels == () and thresholds.with_levels([1.0]).high == thresholds.high


def test_a_smoothed_end_point_never_lands_on_the_other_side_of_a_level() -> None:
    # The 92 before the last 93 would end its segment on the median of 93, 93, 92, 92 (92.5): on the level.
    values = [93.0, 93.0, 92.0, 92.0, 93.0, 93.0, 93.0]
    kept_times, kept_values = compress(values, [92.5], smooth=2)
    times = [T0 + i * SECOND for i in range(len(values))]
    assert step_crossings(kept_times, kept_values, [92.5]) == step_crossings(times, values, [92.5])
    assert set(kept_values) <= set(values)
