"""SustainedThresholdRule: episodes, hysteresis, replays, untrusted quality, sparse input as a step function.

The rule is pure; :class:`Stored` drives it as the cloud does, through the engine, with every state
passed through JSON between calls, as it is when stored in the database.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules import (
    RULE_TYPES,
    AlertChange,
    SustainedThresholdRule,
    build_rules,
    default_rule_config,
    format_duration,
)
from tests.unit._rules_harness import T0, S, Stored, series
from vitals.catalogue import UnknownMetricError
from vitals.samples import Quality, Sample


def _rule(**overrides: object) -> Stored:
    arguments: dict[str, object] = {
        "name": "spo2_low", "metric": "spo2", "direction": "below", "threshold": 90.0, "duration_s": 60.0,
        "clear_threshold": 92.0, "clear_s": 60.0, "severity": "high",
    }
    arguments.update(overrides)
    return Stored(SustainedThresholdRule(**arguments))  # type: ignore[arg-type]


def _dense(start_s: int, stop_s: int, value: float) -> list[tuple[float, float]]:
    return [(float(t), value) for t in range(start_s, stop_s)]


def _change(state: str, start_s: float, fired_s: float, last_s: float, worst: float,
            resolved_s: float | None = None, held_s: float | None = None) -> AlertChange:
    held = last_s - start_s if held_s is None else held_s
    return AlertChange(
        rule="spo2_low", patient="p1", metric="spo2", severity="urgent", episode_start_ns=T0 + int(start_s * S),
        fired_ns=T0 + int(fired_s * S), last_ns=T0 + int(last_s * S), worst_value=worst, threshold=90.0,
        message=f"spo2 below 90 % for {format_duration(held)} (worst {worst:g} %)",
        state=state,  # type: ignore[arg-type]
        resolved_ns=None if resolved_s is None else T0 + int(resolved_s * S),
    )


def test_short_dip_is_not_an_episode() -> None:
    rule = _rule()
    assert rule.evaluate("p1", series(_dense(0, 60, 85.0))) == []
    assert rule.evaluate("p1", series([(59.5, 95.0)])) == []  # low for 59.5 s
    # The next dip counts from its own start, not from the first one.
    assert rule.evaluate("p1", series(_dense(61, 120, 85.0))) == []


def test_sustained_dip_fires_once_with_its_latest_state() -> None:
    rule = _rule()
    points = [*_dense(0, 60, 86.0), (60, 84.0), (61, 88.0)]
    assert rule.evaluate("p1", series(points)) == [_change("open", 0, 60, 61, 84.0)]


def test_episode_continues_across_calls_and_tracks_worst() -> None:
    rule = _rule()
    assert rule.evaluate("p1", series(_dense(0, 30, 89.0))) == []
    assert rule.evaluate("p1", series(_dense(30, 61, 87.0))) == [_change("open", 0, 60, 60, 87.0)]
    assert rule.evaluate("p1", series([(70, 80.0), (80, 85.0)])) == [_change("open", 0, 60, 80, 80.0)]


def test_hysteresis_values_between_thresholds_keep_the_episode_open() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 61, 85.0)))
    changes = rule.evaluate("p1", series(_dense(61, 300, 91.0)))  # above 90, below the clear level 92
    assert [c.state for c in changes] == ["open"]
    assert changes[0].last_ns == T0 + 299 * S
    assert changes[0].worst_value == 85.0


def test_sustained_recovery_resolves() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 61, 85.0)))
    assert rule.evaluate("p1", series(_dense(61, 120, 93.0))) == []  # recovering for 59 s
    assert rule.evaluate("p1", series([(121, 94.0)])) == [
        _change("resolved", 0, 60, 60, 85.0, resolved_s=121)
    ]
    assert rule.evaluate("p1", series(_dense(122, 200, 97.0))) == []


def test_interrupted_recovery_starts_over() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 61, 85.0)))
    rule.evaluate("p1", series(_dense(61, 100, 95.0)))  # 39 s of recovery
    rule.evaluate("p1", series([(100, 91.0)]))  # not clear: recovery starts over
    assert rule.evaluate("p1", series(_dense(101, 160, 95.0))) == []  # 59 s
    changes = rule.evaluate("p1", series([(161, 95.0)]))
    assert [(c.state, c.episode_start_ns, c.resolved_ns) for c in changes] == [("resolved", T0, T0 + 161 * S)]


def test_new_crossing_after_resolution_opens_a_new_episode() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 61, 85.0) + _dense(61, 122, 95.0)))
    changes = rule.evaluate("p1", series(_dense(200, 261, 88.0)))
    assert changes == [_change("open", 200, 260, 260, 88.0)]


def test_one_call_can_resolve_one_episode_and_open_the_next() -> None:
    rule = _rule()
    points = _dense(0, 61, 85.0) + _dense(61, 122, 95.0) + _dense(200, 261, 88.0)
    changes = rule.evaluate("p1", series(points))
    assert changes == [_change("resolved", 0, 60, 60, 85.0, resolved_s=121), _change("open", 200, 260, 260, 88.0)]


def test_replayed_and_older_samples_are_ignored() -> None:
    rule = _rule()
    samples = series(_dense(0, 61, 85.0))
    first = rule.evaluate("p1", samples)
    assert first
    assert rule.evaluate("p1", samples) == []
    assert rule.evaluate("p1", samples[:30]) == []


def test_same_data_gives_the_same_changes_in_a_fresh_rule() -> None:
    # A restarted cloud re-evaluating redelivered data names the same episode, so the store upserts.
    samples = series(_dense(0, 90, 85.0))
    assert _rule().evaluate("p1", samples) == _rule().evaluate("p1", samples)


@pytest.mark.parametrize(
    "flag", [Quality.ARTIFACT, Quality.LOW_SIGNAL_QUALITY, Quality.INTERPOLATED, Quality.DEVICE_QUESTIONABLE,
             Quality.ARTIFACT | Quality.LATE],
)
def test_untrusted_quality_never_drives_an_alert(flag: Quality) -> None:
    rule = _rule()
    assert rule.evaluate("p1", series(_dense(0, 300, 60.0), quality=int(flag))) == []
    # Nor does it break a clean run: the clean readings around it decide.
    mixed = series(_dense(400, 430, 97.0)) + series(_dense(430, 500, 50.0), quality=int(flag))
    assert rule.evaluate("p1", mixed + series([(500, 97.0)])) == []


def test_untrusted_readings_do_not_end_an_episode() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 30, 85.0)))
    rule.evaluate("p1", series(_dense(30, 59, 99.0), quality=int(Quality.ARTIFACT)))
    assert rule.evaluate("p1", series([(61, 85.0)])) == [_change("open", 0, 61, 61, 85.0)]


@pytest.mark.parametrize("flag", [Quality.OK, Quality.HEARTBEAT, Quality.LATE, Quality.RATE_OF_CHANGE])
def test_trusted_flags_count(flag: Quality) -> None:
    assert _rule().evaluate("p1", series(_dense(0, 61, 85.0), quality=int(flag)))


def test_other_metrics_are_ignored() -> None:
    assert _rule().evaluate("p1", series(_dense(0, 300, 50.0), metric="heart_rate")) == []


def test_patients_are_independent() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 30, 85.0)))
    assert rule.evaluate("p2", series(_dense(30, 61, 85.0))) == []
    changes = rule.evaluate("p1", series(_dense(30, 61, 85.0)))
    assert [(c.patient, c.episode_start_ns) for c in changes] == [("p1", T0)]


# -- sparse (compressed) input is a step function -----------------------------------------------------


def test_sparse_low_reading_held_past_the_duration_fires_when_the_next_reading_arrives() -> None:
    # The edge compressor sends only changes: 85 % at t=0 holds until 97 % arrives at t=120 s.
    changes = _rule().evaluate("p1", series([(0, 85.0), (120, 97.0)]))
    assert [(c.state, c.episode_start_ns, c.fired_ns, c.last_ns, c.worst_value) for c in changes] == [
        ("open", T0, T0 + 120 * S, T0 + 120 * S, 85.0)
    ]


def test_sparse_and_dense_streams_agree() -> None:
    dense = series(_dense(0, 120, 85.0) + _dense(120, 400, 97.0) + _dense(400, 500, 85.0))
    sparse = series([(0, 85.0), (120, 97.0), (400, 85.0), (499, 85.0)])
    dense_changes = _rule().evaluate("p1", dense)
    sparse_changes = _rule().evaluate("p1", sparse)
    summary = [(c.state, c.episode_start_ns) for c in dense_changes]
    assert summary == [("resolved", T0), ("open", T0 + 400 * S)]
    assert [(c.state, c.episode_start_ns) for c in sparse_changes] == summary


def test_sparse_low_reading_not_held_long_enough_does_not_fire() -> None:
    assert _rule().evaluate("p1", series([(0, 85.0), (59, 97.0), (200, 97.0)])) == []


def test_sparse_recovery_held_past_clear_time_resolves_before_a_new_crossing() -> None:
    rule = _rule()
    rule.evaluate("p1", series(_dense(0, 61, 85.0)))
    rule.evaluate("p1", series([(61, 97.0)]))  # then nothing: the value holds
    changes = rule.evaluate("p1", series([(300, 85.0)]))
    assert [(c.state, c.episode_start_ns, c.resolved_ns) for c in changes] == [
        ("resolved", T0, T0 + 300 * S)
    ]
    # The reading at 300 s begins a new episode, which fires once held.
    later = rule.evaluate("p1", series([(360, 85.0)]))
    assert [(c.state, c.episode_start_ns) for c in later] == [("open", T0 + 300 * S)]


def test_sparse_between_reading_confirms_the_episode() -> None:
    changes = _rule().evaluate("p1", series([(0, 85.0), (90, 91.0)]))
    assert [(c.state, c.last_ns) for c in changes] == [("open", T0 + 90 * S)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 200), st.sampled_from([80.0, 85.0, 91.0, 93.0, 97.0])),
                min_size=1, max_size=40))
def test_dropping_repeated_values_does_not_change_the_outcome(steps: list[tuple[int, float]]) -> None:
    # A swinging-door-like compressor keeps only readings whose value changed (and the last one).
    points: list[tuple[float, float]] = []
    t = 0
    for gap, value in steps:
        points.extend((float(t + k), value) for k in range(gap))
        t += gap
    points.append((float(t), steps[-1][1]))
    compressed = [p for i, p in enumerate(points) if i == 0 or p[1] != points[i - 1][1] or i == len(points) - 1]
    dense_changes = _rule().evaluate("p1", series(points))
    sparse_changes = _rule().evaluate("p1", series(compressed))
    assert [(c.state, c.episode_start_ns, c.worst_value) for c in dense_changes] == [
        (c.state, c.episode_start_ns, c.worst_value) for c in sparse_changes
    ]


# -- configuration --------------------------------------------------------------------------------------


def test_direction_above() -> None:
    rule = Stored(SustainedThresholdRule("tachy", "heart_rate", "above", 120.0, 30.0, clear_threshold=110.0,
                                          clear_s=10))
    samples = [Sample("heart_rate", T0 + t * S, 130.0 + t % 3) for t in range(31)]
    changes = rule.evaluate("p1", samples)
    assert [(c.state, c.worst_value, c.metric) for c in changes] == [("open", 132.0, "heart_rate")]
    assert changes[0].message == "heart_rate above 120 /min for 30 s (worst 132 /min)"
    more = [Sample("heart_rate", T0 + t * S, 105.0) for t in range(31, 42)]
    assert [c.state for c in rule.evaluate("p1", more)] == ["resolved"]


def test_zero_duration_fires_on_the_first_reading() -> None:
    rule = _rule(duration_s=0.0, clear_s=0.0)
    assert rule.evaluate("p1", series([(0, 80.0)])) == [_change("open", 0, 0, 0, 80.0)]
    assert [c.state for c in rule.evaluate("p1", series([(1, 92.0)]))] == ["resolved"]


def test_clear_threshold_defaults_to_threshold() -> None:
    rule = _rule(clear_threshold=None, clear_s=0.0)
    rule.evaluate("p1", series(_dense(0, 61, 85.0)))
    assert [c.state for c in rule.evaluate("p1", series([(61, 90.0)]))] == ["resolved"]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(UnknownMetricError, match="spo3"):
        _rule(metric="spo3")
    with pytest.raises(ValueError, match="direction must be 'below' or 'above'"):
        _rule(direction="sideways")
    with pytest.raises(ValueError, match="durations must not be negative"):
        _rule(duration_s=-1.0)
    with pytest.raises(ValueError, match="durations must not be negative"):
        _rule(clear_s=-1.0)


def test_default_rules() -> None:
    rules = build_rules()
    by_name = {rule.name: rule for rule in rules}
    assert len(by_name) == len(rules) > 20
    rule = by_name["spo2_low_sustained"]
    assert isinstance(rule, SustainedThresholdRule)
    assert (rule.name, rule.metric, rule.direction, rule.threshold, rule.duration_ns, rule.clear_threshold) == (
        "spo2_low_sustained", "spo2", "below", 90.0, 60 * S, 92.0)
    assert rule.metrics == frozenset({"spo2"})
    # Every rule type but the alias is in the default set, and the plain-data form builds the same rules.
    assert set(RULE_TYPES) - {"threshold", "repeating"} <= {entry["type"] for entry in default_rule_config()}
    assert [r.name for r in build_rules(default_rule_config())] == [r.name for r in rules]


def test_build_rules_errors_name_the_rule() -> None:
    with pytest.raises(ValueError, match=r"rules: \[0\]\.type: unknown rule type 'nope'; known: baseline, "):
        build_rules([{"type": "nope"}])
    entry = {**default_rule_config()[0], "colour": "red"}
    with pytest.raises(ValueError, match=r"rules: \[0\]\.colour: unknown field; expected one of: "):
        build_rules([entry])
    assert build_rules([]) == []
