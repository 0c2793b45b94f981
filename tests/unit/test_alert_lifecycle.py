"""The alert lifecycle (pure): transitions, escalation, repeats, timeouts, with an injected clock."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.alerting import (
    Acknowledge,
    AlertingPolicy,
    AlertLifecycle,
    EscalationStep,
    LifecycleError,
    Notify,
    Resolve,
    RuleSignal,
    StopNotifications,
    Tick,
    Transition,
    advance,
)
from cloud.rules import AlertChange

S = 10**9
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
POLICY = AlertingPolicy(
    steps=[EscalationStep(after_min=0, notify=["doctor"]), EscalationStep(after_min=10, notify=["care_team"]),
           EscalationStep(after_min=30, notify=["family"])],
    repeat_min={"urgent": 5, "info": None, "default": 20}, ack_timeout_min=60, close_after_min=15,
    pending_expiry_min=120,
)


def _change(state: str = "open", start: int = 0, severity: str = "urgent") -> AlertChange:
    return AlertChange(rule="spo2_low", patient="p1", metric="spo2", severity=severity, episode_start_ns=start * S,
                       fired_ns=(start + 60) * S, last_ns=(start + 90) * S, worst_value=85.0, threshold=90.0,
                       message="spo2 low", state=state)  # type: ignore[arg-type]


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _notified(effects: list[object]) -> list[tuple[tuple[str, ...], str]]:
    return [(e.roles, e.purpose) for e in effects if isinstance(e, Notify)]


def _moves(effects: list[object]) -> list[tuple[str | None, str]]:
    return [(e.from_state, e.to_state) for e in effects if isinstance(e, Transition)]


def _fire(at: float = 0) -> AlertLifecycle:
    alert, _ = advance(None, RuleSignal(_change()), _at(at), POLICY)
    assert alert is not None
    return alert


def test_a_rule_opening_fires_and_tells_the_first_step_at_once() -> None:
    alert, effects = advance(None, RuleSignal(_change()), T0, POLICY)
    assert alert is not None
    assert (alert.state, alert.episodes, alert.escalation_step, alert.firing_since) == ("firing", 1, 1, T0)
    assert _moves(effects) == [(None, "firing")]
    assert _notified(effects) == [(("doctor",), "fire")]


def test_escalation_steps_then_repeats_until_acknowledged() -> None:
    alert = _fire()
    told: list[tuple[float, tuple[tuple[str, ...], str]]] = []
    for minute in range(0, 61):
        next_alert, effects = advance(alert, Tick(), _at(minute), POLICY)
        assert next_alert is not None
        alert = next_alert
        told += [(minute, n) for n in _notified(effects)]
    assert told[:3] == [(5, (("doctor",), "repeat")), (10, (("care_team",), "escalate")),
                        (15, (("doctor", "care_team"), "repeat"))]
    assert (30, (("family",), "escalate")) in told
    assert told[-1] == (60, (("doctor", "care_team", "family"), "repeat"))
    acked, effects = advance(alert, Acknowledge("dr.house"), _at(61), POLICY)
    assert acked is not None and acked.state == "acknowledged"
    assert StopNotifications() in effects
    for minute in range(61, 121):
        acked, effects = advance(acked, Tick(), _at(minute), POLICY)
        assert acked is not None and _notified(effects) == []


def test_an_acknowledgement_times_out_and_fires_again_from_the_first_step() -> None:
    alert, _ = advance(_fire(), Acknowledge("dr.house"), _at(1), POLICY)
    assert alert is not None
    before, effects = advance(alert, Tick(), _at(60.9), POLICY)
    assert before == alert and effects == []
    again, effects = advance(alert, Tick(), _at(61), POLICY)
    assert again is not None and again.state == "firing"
    assert _moves(effects) == [("acknowledged", "firing")]
    assert _notified(effects) == [(("doctor",), "fire")]


def test_no_repeats_for_a_severity_that_has_none() -> None:
    alert, _ = advance(None, RuleSignal(_change(severity="info")), T0, POLICY)
    policy = POLICY.model_copy(update={"steps": [EscalationStep(after_min=0, notify=["doctor"])]})
    for minute in range(1, 300, 7):
        alert, effects = advance(alert, Tick(), _at(minute), policy)
        assert _notified(effects) == []


def test_the_rule_resolving_then_the_quiet_period_closes_it() -> None:
    alert, effects = advance(_fire(), RuleSignal(_change("resolved")), _at(3), POLICY)
    assert alert is not None and (alert.state, alert.resolved_by, alert.resolution) == ("resolved", "rule:spo2_low",
                                                                                          "cleared")
    assert StopNotifications() not in effects  # what is queued still goes: the doctor hears of the episode
    still, effects = advance(alert, Tick(), _at(17.9), POLICY)
    assert still == alert
    closed, effects = advance(alert, Tick(), _at(18), POLICY)
    assert closed is not None and closed.state == "closed" and _moves(effects) == [("resolved", "closed")]


def test_a_new_episode_before_closing_is_a_repeat_of_the_same_alert() -> None:
    alert, _ = advance(_fire(), RuleSignal(_change("resolved")), _at(3), POLICY)
    again, effects = advance(alert, RuleSignal(_change(start=600)), _at(8), POLICY)
    assert again is not None
    assert (again.state, again.episodes, again.episode_ns, again.resolved_at) == ("firing", 2, 600 * S, None)
    assert _notified(effects) == [(("doctor",), "fire")]
    # A replay of the first episode changes nothing.
    assert advance(again, RuleSignal(_change("open", start=0)), _at(9), POLICY) == (again, [])


def test_clinician_resolution_with_a_reason_ignores_the_rest_of_that_episode() -> None:
    alert, effects = advance(_fire(), Resolve("dr.house", "false_alarm"), _at(2), POLICY)
    assert alert is not None and (alert.state, alert.resolved_by, alert.resolution) == ("resolved", "dr.house",
                                                                                          "false_alarm")
    assert StopNotifications() in effects
    same, effects = advance(alert, RuleSignal(_change("open")), _at(3), POLICY)
    assert same == alert and effects == []
    with pytest.raises(LifecycleError, match="already resolved"):
        advance(alert, Resolve("dr.house", "actioned"), _at(4), POLICY)


def test_pending_fires_when_the_rule_opens_and_expires_when_it_never_does() -> None:
    pending, effects = advance(None, RuleSignal(_change("pending")), T0, POLICY)
    assert pending is not None and pending.state == "pending" and _notified(effects) == []
    with pytest.raises(LifecycleError, match="pending"):
        advance(pending, Acknowledge("dr.house"), _at(1), POLICY)
    fired, effects = advance(pending, RuleSignal(_change("open")), _at(1), POLICY)
    assert fired is not None and (fired.state, fired.episodes) == ("firing", 1)
    assert _moves(effects) == [("pending", "firing")] and _notified(effects) == [(("doctor",), "fire")]
    expired, effects = advance(pending, Tick(), _at(120), POLICY)
    assert expired is not None and expired.state == "closed" and _moves(effects) == [("pending", "closed")]


def test_an_episode_that_fired_and_ended_in_one_evaluation_is_told_once_and_resolved() -> None:
    alert, effects = advance(None, RuleSignal(_change("resolved")), T0, POLICY)
    assert alert is not None and alert.state == "resolved"
    assert _moves(effects) == [(None, "firing"), ("firing", "resolved")]
    assert _notified(effects) == [(("doctor",), "fire")]


def test_acknowledging_a_resolved_alert_keeps_who_saw_it() -> None:
    alert, _ = advance(None, RuleSignal(_change("resolved")), T0, POLICY)
    seen, effects = advance(alert, Acknowledge("dr.house"), _at(1), POLICY)
    assert seen is not None and (seen.state, seen.acknowledged_by) == ("resolved", "dr.house")
    assert _moves(effects) == [("resolved", "resolved")]
    assert advance(seen, Acknowledge("dr.who"), _at(2), POLICY) == (seen, [])


# -- properties over random event sequences ---------------------------------------------------------------

_EVENTS = st.one_of(
    st.tuples(st.just("rule"), st.sampled_from(["pending", "open", "resolved"]), st.integers(0, 4)),
    st.tuples(st.just("ack"), st.just(""), st.just(0)),
    st.tuples(st.just("resolve"), st.sampled_from(["actioned", "false_alarm", "device_problem"]), st.just(0)),
    st.tuples(st.just("tick"), st.just(""), st.just(0)),
)
_ALLOWED = {
    (None, "pending"), (None, "firing"), ("pending", "firing"), ("pending", "resolved"), ("pending", "closed"),
    ("firing", "acknowledged"), ("firing", "resolved"), ("acknowledged", "firing"), ("acknowledged", "resolved"),
    ("resolved", "firing"), ("resolved", "pending"), ("resolved", "closed"), ("resolved", "resolved"),
    ("closed", "closed"),
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_EVENTS, st.integers(0, 40)), max_size=40))
def test_lifecycle_invariants_hold_for_any_event_sequence(events: list[tuple[tuple[str, str, int], int]]) -> None:
    alert: AlertLifecycle | None = None
    now = T0
    episode = 0
    for (kind, arg, step), gap_min in events:
        now += dt.timedelta(minutes=gap_min)
        before = alert
        try:
            if kind == "rule":
                episode += step  # episodes only move forward in event time
                event: object = RuleSignal(_change(arg, start=episode * 1000))
            elif kind == "ack":
                event = Acknowledge("dr.house")
            elif kind == "resolve":
                event = Resolve("dr.house", arg)  # type: ignore[arg-type]
            else:
                event = Tick()
            alert, effects = advance(alert, event, now, POLICY)  # type: ignore[arg-type]
        except LifecycleError:
            assert before is None or kind in ("ack", "resolve")
            continue
        assert alert is not None
        for move in _moves(effects):
            assert move in _ALLOWED, move
        notified = _notified(effects)
        if notified:
            # Only a firing alert tells anyone; never one that is acknowledged.
            states = [t.to_state for t in effects if isinstance(t, Transition)]
            assert alert.state == "firing" or "firing" in states
            assert not (before is not None and before.state == "acknowledged" and "firing" not in states)
        if kind == "ack" and before is not None and before.state == "firing":
            assert alert.state == "acknowledged" and notified == []
        if before is not None and before.state == "acknowledged" and alert.state == "acknowledged":
            assert notified == []
        if alert.state == "closed":
            assert kind in ("tick",) or before is None or before.state == "closed"
        assert alert.escalation_step <= max(len(POLICY.steps), 1)
        assert alert.episodes >= (1 if alert.state in ("firing", "acknowledged") else 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=30))
def test_each_escalation_step_is_told_once_per_firing_spell(gaps: list[int]) -> None:
    alert: AlertLifecycle | None = _fire()
    now = T0
    steps: list[int] = []
    for gap in gaps:
        now += dt.timedelta(minutes=gap)
        alert, effects = advance(alert, Tick(), now, POLICY)
        steps += [e.step for e in effects if isinstance(e, Notify) and e.purpose != "repeat"]
    assert steps == sorted(set(steps))
    assert dataclasses.replace(alert).state == "firing"  # type: ignore[arg-type]
