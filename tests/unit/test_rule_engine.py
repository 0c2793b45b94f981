"""RuleEngine: event-time watermarks, late spans and their re-evaluation, ticks, chunking independence."""

from __future__ import annotations

import copy
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules import (
    CONDITIONS,
    SEVERITIES,
    AlertChange,
    LateSpan,
    PatientFacts,
    PatientSettings,
    RuleEngine,
    RuleState,
    StateKey,
    SustainedThresholdRule,
    build_rules,
    format_duration,
    merge_spans,
)
from tests.unit._rules_harness import T0, S
from vitals.samples import Quality, Sample


def _engine() -> RuleEngine:
    return RuleEngine([SustainedThresholdRule("spo2_low", "spo2", "below", 90.0, 60.0, clear_threshold=92.0,
                                              clear_s=60.0)])


def _samples(points: list[tuple[int, float]], metric: str = "spo2") -> list[Sample]:
    return [Sample(metric, T0 + t * S, value) for t, value in points]


def _final(changes: list[AlertChange]) -> dict[int, tuple[str, int, float, int | None]]:
    # The store keeps the latest change per episode: compare that.
    latest: dict[int, tuple[str, int, float, int | None]] = {}
    for change in changes:
        latest[change.episode_start_ns] = (change.state, change.last_ns, change.worst_value, change.resolved_ns)
    return latest


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (59.4, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (6540, "1 h 49 min"),
    (86_400, "1 d"), (2 * 86_400 + 3 * 3600 + 59, "2 d 3 h"),
])
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_rule_names_must_be_unique() -> None:
    rule = SustainedThresholdRule("same", "spo2", "below", 90.0, 60.0)
    with pytest.raises(ValueError, match="repeated: same"):
        RuleEngine([rule, SustainedThresholdRule("same", "heart_rate", "above", 120.0, 60.0)])


def test_only_affected_rules_are_keyed_and_states_carry_the_watermark() -> None:
    engine = _engine()
    assert engine.keys_for({"p1": {"spo2"}, "p2": {"heart_rate"}}) == [("spo2_low", "p1")]
    result = engine.evaluate({}, {"p1": _samples([(0, 97.0), (5, 96.0)]), "p2": _samples([(0, 60.0)], "heart_rate")})
    assert list(result.states) == [("spo2_low", "p1")]
    assert result.states[("spo2_low", "p1")]["watermark"] == T0 + 5 * S
    assert result.changes == [] and result.late == []


def test_samples_older_than_the_watermark_become_a_late_span_not_a_judgement() -> None:
    engine = _engine()
    first = engine.evaluate({}, {"p1": _samples([(1000, 97.0)])})
    # A backfill from before the live reading: 80 % for two minutes would fire if judged live.
    backfill = _samples([(t, 80.0) for t in range(0, 120)])
    second = engine.evaluate(first.states, {"p1": backfill})
    assert second.changes == [] and second.states == {}
    assert second.late == [LateSpan("spo2_low", "p1", T0, T0 + 119 * S)]
    assert engine.window(second.late[0]) == (T0 - 120 * S, T0 + 239 * S)  # widened by hold + clear times
    found = engine.reevaluate(second.late[0], backfill + _samples([(120, 97.0), (300, 97.0)]))
    assert [(c.state, c.episode_start_ns, c.late) for c in found] == [("resolved", T0, True)]


def test_a_reading_at_the_watermark_is_neither_new_nor_late() -> None:
    engine = _engine()
    first = engine.evaluate({}, {"p1": _samples([(10, 97.0)])})
    again = engine.evaluate(first.states, {"p1": _samples([(10, 50.0)])})
    assert again.states == {} and again.late == [] and again.changes == []


def test_late_spans_merge_per_rule_and_patient() -> None:
    spans = [LateSpan("r", "p", 5, 9), LateSpan("r", "p", 1, 3), LateSpan("r", "q", 2, 2)]
    assert merge_spans(spans) == [LateSpan("r", "p", 1, 9), LateSpan("r", "q", 2, 2)]


def test_tick_changes_nothing_for_a_rule_that_waits_for_data_and_keeps_unknown_rules() -> None:
    engine = _engine()
    states: dict[StateKey, RuleState] = {("spo2_low", "p1"): {"watermark": T0, "rule": {"episode": None}},
                                         ("retired_rule", "p1"): {"watermark": T0, "rule": {"x": 1}}}
    result = engine.tick(states, T0 + 3600 * S)
    assert result.states == {} and result.changes == []


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.sampled_from([80.0, 85.0, 89.0, 91.0, 93.0, 97.0]), min_size=1, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=12),
)
def test_outcome_does_not_depend_on_how_samples_are_chunked_into_batches(values: list[float],
                                                                         cuts: list[int]) -> None:
    samples = _samples([(5 * i, v) for i, v in enumerate(values)])
    engine = _engine()
    whole = engine.evaluate({}, {"p1": samples})
    bounds = sorted({0, len(samples), *(c for c in cuts if c < len(samples))})
    states: dict[StateKey, RuleState] = {}
    changes: list[AlertChange] = []
    for start, end in itertools.pairwise(bounds):
        result = engine.evaluate(states, {"p1": samples[start:end]})
        # Stored as JSON between batches, as the database keeps it.
        states.update({key: json.loads(json.dumps(state)) for key, state in result.states.items()})
        changes.extend(result.changes)
    assert _final(changes) == _final(whole.changes)
    assert states == {key: json.loads(json.dumps(state)) for key, state in whole.states.items()}


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([80.0, 85.0, 91.0, 97.0]), min_size=2, max_size=200),
       split=st.integers(1, 199))
def test_a_backfill_reevaluated_finds_what_judging_it_in_order_finds(values: list[float], split: int) -> None:
    # Live readings came first; the older ones arrive late and are re-evaluated from stored history.
    samples = _samples([(5 * i, v) for i, v in enumerate(values)])
    split = min(split, len(samples) - 1)
    engine = _engine()
    in_order = engine.evaluate({}, {"p1": samples})
    live = engine.evaluate({}, {"p1": samples[split:]})
    late = engine.evaluate(live.states, {"p1": samples[:split]})
    assert late.changes == [] and len(late.late) == 1
    start, end = engine.window(late.late[0])
    history = [s for s in samples if start <= s.time_ns <= end]
    found = engine.reevaluate(late.late[0], history)
    assert all(change.late for change in found)
    # Every episode judged in order that starts inside the late span is found by the re-evaluation.
    in_span = {start_ns for start_ns in _final(in_order.changes) if start_ns <= late.late[0].end_ns}
    assert in_span <= set(_final(found))


# -- per-patient settings, conditions, versions, facts -------------------------------------------------------------
def _low(**overrides: object) -> dict[str, object]:
    return {"type": "threshold", "name": "spo2_low", "metric": "spo2", "direction": "below", "threshold": 90,
            "for_s": 0, "clear_s": 0, **overrides}


def test_a_patients_override_changes_only_that_patients_evaluation_and_is_versioned() -> None:
    settings = {"p1": PatientSettings(version="7", rules={"spo2_low": {"threshold": 92}})}
    engine = RuleEngine(build_rules([_low()]), settings)
    samples = _samples([(0, 91.0)])
    result = engine.evaluate({}, {"p1": samples, "p2": samples})
    [change] = result.changes
    assert (change.patient, change.threshold) == ("p1", 92.0)
    base = engine.rules[0].version  # type: ignore[attr-defined]
    assert change.rule_version is not None and change.rule_version.endswith("@7")
    assert not change.rule_version.startswith(base)  # a different configuration judged it
    assert engine.evaluate({}, {"p2": _samples([(0, 89.0)])}).changes[0].rule_version == base
    # Settings given to the call win over the engine's own.
    assert engine.evaluate({}, {"p1": samples}, settings={}).changes == []


def test_bad_overrides_and_disabled_rules() -> None:
    engine = RuleEngine(build_rules([_low()]))
    with pytest.raises(ValueError, match=r"rule spo2_low: patient override threshold: Input should be a valid number"):
        engine.rules_for("p1", PatientSettings(rules={"spo2_low": {"threshold": "low"}}))
    with pytest.raises(ValueError, match="cannot change name"):
        engine.rules_for("p1", PatientSettings(rules={"spo2_low": {"name": "other"}}))
    off = PatientSettings(rules={"spo2_low": {"enabled": False}})
    assert engine.evaluate({}, {"p1": _samples([(0, 80.0)])}, {"p1": off}).changes == []


def test_condition_rules_judge_only_patients_with_that_condition() -> None:
    engine = RuleEngine(build_rules([_low(conditions=["copd"])]))
    samples = _samples([(0, 80.0)])
    assert engine.evaluate({}, {"p1": samples}).changes == []  # no settings: only the general rules
    assert engine.evaluate({}, {"p1": samples}, {"p1": PatientSettings(conditions={"diabetes"})}).changes == []
    assert len(engine.evaluate({}, {"p1": samples}, {"p1": PatientSettings(conditions={"copd"})}).changes) == 1


def test_facts_reach_rules_without_a_stored_state() -> None:
    engine = RuleEngine(build_rules([{"type": "gateway_offline", "name": "gw", "offline_s": 60}]))
    result = engine.tick({}, T0 + 61 * S, facts={"p1": PatientFacts("gw-1", "offline", T0)})
    assert [(c.rule, c.patient, c.state) for c in result.changes] == [("gw", "p1", "open")]
    assert result.states[("gw", "p1")] == {"watermark": -1, "rule": {"open": T0}}
    assert engine.tick(result.states, T0 + 120 * S).changes == []  # without facts, nothing is judged


def test_late_reevaluation_returns_only_fired_alerts() -> None:
    engine = RuleEngine(build_rules([_low(for_s=60)]), pending=True)
    span = LateSpan("spo2_low", "p1", T0, T0 + 10 * S)
    assert engine.reevaluate(span, _samples([(0, 80.0), (10, 80.0)])) == []  # pending only: nothing
    found = engine.reevaluate(span, _samples([(0, 80.0), (70, 80.0)]))
    assert [(c.state, c.late) for c in found] == [("open", True)]


# -- properties over the whole default rule set ----------------------------------------------------------------------
# The default set has every rule type but one; add it.
_DEFAULT = build_rules() + build_rules([{"type": "repeating", "name": "sbp_3_of_5", "metric": "bp_systolic",
                                         "direction": "above", "threshold": 160, "k": 3, "n": 5}])
_EVERY_CONDITION = PatientSettings(conditions=frozenset(CONDITIONS), time_zone="Europe/Paris", version="3")
_VALUES = {"spo2": (80.0, 100.0), "pulse_rate": (30.0, 160.0), "heart_rate": (30.0, 160.0),
           "bp_systolic": (90.0, 200.0), "bp_diastolic": (50.0, 130.0), "body_weight": (78.0, 84.0),
           "blood_glucose": (2.5, 16.0), "body_temperature": (34.5, 40.0), "respiratory_rate": (8.0, 30.0)}


@st.composite
def _recordings(draw: st.DrawFn) -> list[Sample]:
    metrics = draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=4, unique=True))
    samples: list[Sample] = []
    time_ns = T0
    for _ in range(draw(st.integers(1, 250))):
        time_ns += draw(st.sampled_from([1, 30, 600, 3600, 6 * 3600])) * S
        metric = draw(st.sampled_from(metrics))
        low, high = _VALUES[metric]
        value = draw(st.floats(low, high, allow_nan=False).map(lambda v: round(v, 1)))
        quality = draw(st.sampled_from([0, 0, 0, 0, int(Quality.ARTIFACT), int(Quality.HEARTBEAT)]))
        samples.append(Sample(metric, time_ns, value, quality))
    return samples


def _latest(changes: list[AlertChange]) -> dict[tuple[str, int], tuple[str, int, float, int | None]]:
    latest: dict[tuple[str, int], tuple[str, int, float, int | None]] = {}
    for change in changes:
        if change.state != "pending" and change.details.get("fired", True):
            latest[(change.rule, change.episode_start_ns)] = (change.state, change.last_ns, change.worst_value,
                                                              change.resolved_ns)
    return latest


@settings(max_examples=60, deadline=None)
@given(samples=_recordings(), cuts=st.lists(st.integers(0, 250), max_size=10), with_settings=st.booleans())
def test_every_rule_type_gives_the_same_alerts_however_samples_are_chunked(
        samples: list[Sample], cuts: list[int], with_settings: bool) -> None:
    table = {"p1": _EVERY_CONDITION} if with_settings else {}
    engine = RuleEngine(_DEFAULT, table, pending=True)
    whole = engine.evaluate({}, {"p1": samples})
    bounds = sorted({0, len(samples), *(c for c in cuts if c < len(samples))})
    states: dict[StateKey, RuleState] = {}
    changes: list[AlertChange] = []
    for start, end in itertools.pairwise(bounds):
        before = copy.deepcopy(states)
        result = engine.evaluate(states, {"p1": samples[start:end]})
        assert states == before  # the states handed in are not changed
        # Stored as JSON between batches, as the database keeps it: every state must survive that.
        states.update({key: json.loads(json.dumps(state, allow_nan=False)) for key, state in result.states.items()})
        changes.extend(result.changes)
    assert _latest(changes) == _latest(whole.changes)
    assert states == {key: json.loads(json.dumps(state)) for key, state in whole.states.items()}
    for change in changes:
        assert change.severity in SEVERITIES
        assert change.rule_version is not None
        json.dumps(change.details, allow_nan=False)
    # The clock moves the silence rules on the same states without failing.
    ticked = engine.tick(states, samples[-1].time_ns + 3 * 86_400 * S)
    json.dumps(list(ticked.states.values()), allow_nan=False)


def test_late_data_names_no_span_for_rules_judged_on_the_clock() -> None:
    engine = RuleEngine(build_rules([{"type": "no_data", "name": "quiet", "metrics": ["spo2"], "max_silence_s": 60},
                                     {"type": "threshold", "name": "low", "metric": "spo2", "direction": "below",
                                      "threshold": 90}]))
    first = engine.evaluate({}, {"p1": _samples([(100, 97.0)])})
    late = engine.evaluate(first.states, {"p1": _samples([(10, 80.0)])})
    assert [span.rule for span in late.late] == ["low"]
