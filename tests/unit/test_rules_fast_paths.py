"""The rules' fast paths judge exactly as the plain one-sample-at-a-time machine does (random series)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules import AlertChange, RuleEngine, RuleState, StateKey, build_rules
from cloud.rules._episodes import EpisodeRule
from vitals.samples import Quality, Sample

S = 10**9
T0 = 1_700_000_000 * S

_SUSTAINED = build_rules([
    {"type": "threshold", "name": "low", "metric": "spo2", "direction": "below", "threshold": 90, "for_s": 60,
     "clear_threshold": 92, "clear_s": 30},
    {"type": "threshold", "name": "high", "metric": "spo2", "direction": "above", "threshold": 97,
     "clear_threshold": 95, "clear_s": 0},
])
_BASELINE = build_rules([{"type": "baseline", "name": "base", "metric": "spo2", "period_s": 60,
                          "warmup_periods": 2, "z": 1, "for_s": 60}])
_NO_DATA = build_rules([{"type": "no_data", "name": "silent", "metrics": ["spo2", "pulse_rate"],
                         "max_silence_s": 120}])


@st.composite
def _series(draw: st.DrawFn) -> list[Sample]:
    samples: list[Sample] = []
    time_ns = T0
    for _ in range(draw(st.integers(0, 80))):
        time_ns += draw(st.sampled_from([0, 1, 10, 30, 61, 200])) * S
        metric = draw(st.sampled_from(["spo2", "spo2", "spo2", "pulse_rate", "heart_rate"]))
        value = draw(st.sampled_from([85.0, 89.0, 90.0, 91.0, 92.0, 95.0, 97.0, 98.0, float("nan")])
                     if draw(st.integers(0, 30)) == 0 else st.sampled_from([85.0, 89.0, 90.0, 91.0, 92.0, 95.0,
                                                                             96.0, 97.0, 98.0]))
        quality = draw(st.sampled_from([0, 0, 0, 0, int(Quality.ARTIFACT), int(Quality.HEARTBEAT),
                                        int(Quality.RATE_OF_CHANGE)]))
        samples.append(Sample(metric, time_ns, value, quality))
    return samples


def _chunks(samples: list[Sample], cuts: list[int]) -> list[list[Sample]]:
    bounds = sorted({0, len(samples), *(c for c in cuts if c < len(samples))})
    return [samples[a:b] for a, b in itertools.pairwise(bounds)]


def _plain(rule: Any, state: RuleState | None, patient: str,
           samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
    """The reference: the episode machine judging every sample, without any rule's shortcut."""
    saved = type(rule).quiet_prefix
    try:
        type(rule).quiet_prefix = lambda self, memory, samples: 0
        return EpisodeRule.evaluate(rule, state, patient, samples)
    finally:
        type(rule).quiet_prefix = saved


def _no_data_reference(rule: Any, state: RuleState | None,
                       samples: Sequence[Sample]) -> tuple[RuleState, list[int]]:
    state = dict(state or {"last": None, "open": None})
    ours = [sample.time_ns for sample in samples if sample.metric in rule.metrics]
    if not ours:
        return state, []
    resolved = []
    if state.get("open") is not None:
        resolved.append(ours[0])
        state["open"] = None
    state["last"] = max(ours[-1], state.get("last") or ours[-1])
    return state, resolved


@settings(max_examples=120, deadline=None)
@given(samples=_series(), cuts=st.lists(st.integers(0, 80), max_size=6))
def test_threshold_and_baseline_shortcuts_judge_as_the_plain_machine(samples: list[Sample], cuts: list[int]) -> None:
    for rule in [*_SUSTAINED, *_BASELINE]:
        fast: RuleState | None = None
        plain: RuleState | None = None
        for chunk in _chunks(samples, cuts):
            fast, fast_changes = rule.evaluate(fast, "p1", chunk)
            plain, plain_changes = _plain(rule, plain, "p1", chunk)
            assert repr(fast) == repr(plain)
            assert repr(fast_changes) == repr(plain_changes)


@settings(max_examples=100, deadline=None)
@given(samples=_series(), cuts=st.lists(st.integers(0, 80), max_size=6), ticks=st.lists(st.booleans(), max_size=6))
def test_no_data_shortcut_records_as_the_reference(samples: list[Sample], cuts: list[int], ticks: list[bool]) -> None:
    [rule] = _NO_DATA
    state: RuleState | None = None
    for index, chunk in enumerate(_chunks(samples, cuts)):
        if index < len(ticks) and ticks[index] and chunk:
            state, _ = rule.tick(state, "p1", chunk[0].time_ns + 10**12)
        expected, resolved = _no_data_reference(rule, state, chunk)
        state, changes = rule.evaluate(state, "p1", chunk)
        assert state == expected
        assert [change.resolved_ns for change in changes] == resolved


def _engine_reference(engine: RuleEngine, states: dict[StateKey, RuleState],
                      by_patient: dict[str, list[Sample]]) -> dict[StateKey, RuleState]:
    """Each rule fed its own samples, sorted by time as the engine promises (ties in arrival order)."""
    out: dict[StateKey, RuleState] = {}
    for patient, samples in by_patient.items():
        for rule in engine.rules_for(patient):
            own = sorted((s for s in samples if s.metric in rule.metrics), key=lambda s: s.time_ns)
            stored = states.get((rule.name, patient))
            watermark = stored["watermark"] if stored else -1
            fresh = [s for s in own if s.time_ns > watermark]
            if fresh:
                state, _ = rule.evaluate(stored["rule"] if stored else None, patient, fresh)
                out[(rule.name, patient)] = {"watermark": fresh[-1].time_ns, "rule": state}
    return out


@settings(max_examples=60, deadline=None)
@given(samples=_series(), cuts=st.lists(st.integers(0, 80), max_size=6), shuffle=st.randoms(use_true_random=False))
def test_the_engine_feeds_each_rule_its_samples_in_time_order(samples: list[Sample], cuts: list[int],
                                                              shuffle: Any) -> None:
    engine = RuleEngine(build_rules())
    samples = [s for s in samples if s.value == s.value]  # NEWS2 refuses NaN (the ingest never sends one)
    states: dict[StateKey, RuleState] = {}
    for chunk in _chunks(samples, cuts):
        # Streams as they come, or mixed up.
        chunk = sorted(chunk, key=lambda s: s.metric) if shuffle.random() < 0.5 else shuffle.sample(chunk, len(chunk))
        expected = _engine_reference(engine, states, {"p1": chunk})
        result = engine.evaluate(states, {"p1": chunk})
        assert repr(result.states) == repr(expected)
        states.update(result.states)
