"""The worklist's sparkline cache: reading only the recent end gives what reading everything gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.api._sparklines import SparklineCache

H = 3600 * 10**9
BUCKET = 2 * H
WEEK = 7 * 24 * H


def _means(data: dict[str, list[tuple[int, float]]], patients: list[str], from_ns: int,
           now_ns: int) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """What InfluxDB answers: the mean per epoch-aligned bucket of the values with from_ns <= t < now_ns."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for patient in patients:
        buckets: dict[int, list[float]] = {}
        for t, v in data.get(patient, []):
            if from_ns <= t < now_ns:
                buckets.setdefault(t - t % BUCKET, []).append(v)
        if buckets:
            out[patient] = {"spo2": [(b, sum(vs) / len(vs)) for b, vs in sorted(buckets.items())]}
    return out


def _window_start(now_ns: int) -> int:
    return (now_ns - WEEK) // BUCKET * BUCKET


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       st.lists(st.tuples(st.integers(0, 12 * 24 * H), st.integers(80, 100).map(float)),
                                max_size=60), min_size=1),
       st.lists(st.integers(1, 30 * H), min_size=1, max_size=12), st.integers(0, 5))
def test_the_cache_answers_what_a_full_read_answers(data: dict[str, list[tuple[int, float]]], steps: list[int],
                                                    refresh: int) -> None:
    cache = SparklineCache(BUCKET, settle_s=0, max_age_s=6 * 3600, refresh_per_call=refresh)
    patients = sorted(data)
    now = WEEK
    for step in steps:
        now += step
        start = _window_start(now)
        plan = cache.plan(patients, start, now)
        assert sorted(p for ps in plan.values() for p in ps) == patients
        read = {from_ns: _means(data, ps, from_ns, now) for from_ns, ps in plan.items()}
        got = cache.store(read, plan, start, now)
        expected = _means(data, patients, start, now)
        assert {p: v for p, v in got.items() if v} == expected


def test_a_second_call_reads_only_the_recent_end() -> None:
    cache = SparklineCache(BUCKET, settle_s=300, max_age_s=3600)
    now = 100 * H + 30 * 60 * 10**9
    first = cache.plan(["a"], _window_start(now), now)
    assert first == {_window_start(now): ["a"]}
    cache.store({}, first, _window_start(now), now)
    later = now + 10 * 60 * 10**9
    assert cache.plan(["a"], _window_start(later), later) == {100 * H: ["a"]}
    assert cache.plan(["a"], _window_start(later + 2 * H), later + 2 * H) == {_window_start(later + 2 * H): ["a"]}
