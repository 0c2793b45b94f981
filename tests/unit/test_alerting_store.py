"""The store applying the lifecycle: transitions, the outbox, grouping, silences, inhibition, restarts."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

import cloud.store
from cloud.alerting import AlertingContext, AlertingPolicy, EscalationStep, InhibitRule, LifecycleError
from cloud.rules import AlertChange
from cloud.store import AlertQuery, Base, NotificationItem, Store, open_store

S = 10**9
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
E0 = int(T0.timestamp()) * S
WINDOW = dt.timedelta(seconds=10)
LEASE = dt.timedelta(minutes=2)
POLICY = AlertingPolicy.model_validate({
    "steps": [{"after_min": 0, "notify": ["doctor"]}, {"after_min": 10, "notify": ["care_team"]}],
    "repeat_min": {"default": 5},
    "ack_timeout_min": None,
    "close_after_min": 15,
    "recipients": {
        "*": {"doctor": ["dr@example.org", "https://hooks.example.org/vb"], "care_team": ["team@example.org"]},
        "p2": {"doctor": ["other@example.org"]},
    },
    "rule_kinds": {"gw_offline": "gateway_offline", "spo2_silent": "no_data"},
})


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _change(state: str = "open", *, rule: str = "spo2_low", patient: str = "p1", start_s: int = 0,
            last_s: int = 60, metric: str = "spo2") -> AlertChange:
    return AlertChange(rule=rule, patient=patient, metric=metric, severity="urgent",
                       episode_start_ns=E0 + start_s * S, fired_ns=E0 + (start_s + 60) * S, last_ns=E0 + last_s * S,
                       worst_value=85.0, threshold=90.0, message=f"{metric} low", state=state,  # type: ignore[arg-type]
                       resolved_ns=E0 + last_s * S if state == "resolved" else None)


@pytest.fixture
def alerting_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'a.db'}", AlertingContext(POLICY))
    try:
        yield opened
    finally:
        opened.close()


def _items(store: Store, alert_id: int) -> list[tuple[str, str, str, str]]:
    return [(i.channel, i.address, i.purpose, i.status) for i in store.notification_items(alert_id)]


def test_firing_writes_transitions_and_outbox_items_in_the_same_commit(alerting_store: Store) -> None:
    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(0))
    assert [(t.from_state, t.to_state, t.actor) for t in alerting_store.transitions(alert.id)] == [
        (None, "firing", "rule:spo2_low")]
    assert _items(alerting_store, alert.id) == [
        ("email", "dr@example.org", "fire", "queued"), ("webhook", "https://hooks.example.org/vb", "fire", "queued")]
    [other] = alerting_store.apply_alert_changes([_change(patient="p2")], at=_at(0))
    assert _items(alerting_store, other.id) == [("email", "other@example.org", "fire", "queued")]


def test_one_patients_alerts_firing_together_make_one_message_per_recipient(alerting_store: Store) -> None:
    alerting_store.apply_alert_changes([_change(), _change(rule="hr_high", metric="heart_rate")], at=_at(0))
    assert alerting_store.claim_deliveries(_at(0.1), lease=LEASE, group_window=WINDOW, limit=10) == []  # window open
    messages = alerting_store.claim_deliveries(_at(0.2), lease=LEASE, group_window=WINDOW, limit=10)
    assert sorted((m.channel, m.address, len(m.alerts)) for m in messages) == [
        ("email", "dr@example.org", 2), ("webhook", "https://hooks.example.org/vb", 2)]
    assert len({m.key for m in messages}) == 2


def test_a_crash_between_send_and_mark_resends_the_same_message(alerting_store: Store) -> None:
    alerting_store.apply_alert_changes([_change()], at=_at(0))
    first = alerting_store.claim_deliveries(_at(1), lease=LEASE, group_window=WINDOW, limit=10)
    assert len(first) == 2
    # The worker "crashes" after sending: nothing is marked. While the lease holds nobody else takes them.
    alerting_store.apply_alert_changes([_change(rule="hr_high", metric="heart_rate")], at=_at(1.5))
    assert [m.key for m in alerting_store.claim_deliveries(_at(2), lease=LEASE, group_window=WINDOW, limit=10)
            if m.alerts[0].rule == "spo2_low"] == []
    again = alerting_store.claim_deliveries(_at(4), lease=LEASE, group_window=WINDOW, limit=10)
    spo2 = sorted((m.key, m.attempt, [a.rule for a in m.alerts]) for m in again if m.alerts[0].rule == "spo2_low")
    assert spo2 == sorted((m.key, 2, ["spo2_low"]) for m in first)  # same key, same content, a second attempt
    for message in again:
        alerting_store.mark_sent(message.delivery_id, _at(4))
    assert alerting_store.claim_deliveries(_at(10), lease=LEASE, group_window=WINDOW, limit=10) == []
    assert alerting_store.outbox_counts()["sent"] == 4


def test_acknowledging_cancels_what_is_queued_and_stops_repeats(alerting_store: Store) -> None:
    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(0))
    alerting_store.tick_alerts(_at(5))  # a repeat queued, not yet grouped
    acked = alerting_store.acknowledge(alert.id, "dr.house", _at(5.1))
    assert acked is not None and acked.state == "acknowledged" and acked.acknowledged_at == _at(5.1)
    assert {status for *_, status in _items(alerting_store, alert.id)} == {"cancelled"}
    for minute in range(6, 120, 3):
        alerting_store.tick_alerts(_at(minute))
    assert {status for *_, status in _items(alerting_store, alert.id)} == {"cancelled"}
    assert alerting_store.claim_deliveries(_at(200), lease=LEASE, group_window=WINDOW, limit=10) == []


def test_escalation_and_repeats_reach_the_outbox_on_the_clock(alerting_store: Store) -> None:
    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(0))
    for minute in range(1, 12):
        alerting_store.tick_alerts(_at(minute))
    purposes = [(channel, purpose) for channel, _, purpose, _ in _items(alerting_store, alert.id)]
    # Repeat at 5 min; at 10 the care team's step goes (a step due is no repeat as well).
    assert purposes == [("email", "fire"), ("webhook", "fire"), ("email", "repeat"), ("webhook", "repeat"),
                        ("email", "escalate")]


def test_a_silence_holds_notifications_back_until_it_ends(alerting_store: Store) -> None:
    alerting_store.add_silence("p1", rule=None, metric="spo2", starts_at=_at(0), ends_at=_at(7), reason="in hospital",
                               by="dr.house", at=_at(0))
    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(1))
    items = alerting_store.notification_items(alert.id)
    assert {i.status for i in items} == {"suppressed"} and "silenced" in items[0].reason
    alerting_store.tick_alerts(_at(6))  # the repeat falls inside the silence
    alerting_store.tick_alerts(_at(11))  # after it: the care team's step goes, then the next repeat
    alerting_store.tick_alerts(_at(16))
    statuses = [(i.purpose, i.status) for i in alerting_store.notification_items(alert.id)]
    assert statuses == [("fire", "suppressed")] * 2 + [("repeat", "suppressed")] * 2 + [("escalate", "queued")] + [
        ("repeat", "queued")] * 3
    [other] = alerting_store.apply_alert_changes([_change(rule="hr_high", metric="heart_rate", patient="p2")],
                                                 at=_at(2))
    assert {i.status for i in alerting_store.notification_items(other.id)} == {"queued"}  # another patient


def test_a_deleted_silence_stops_silencing(alerting_store: Store) -> None:
    silence = alerting_store.add_silence("p1", rule=None, metric=None, starts_at=_at(0), ends_at=_at(600),
                                         reason="trip", by="dr.house", at=_at(0))
    assert alerting_store.delete_silence(silence.id, "dr.house", _at(1)) is not None
    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(2))
    assert {i.status for i in alerting_store.notification_items(alert.id)} == {"queued"}
    assert alerting_store.silences(active_at=_at(2)) == []


def test_gateway_offline_inhibits_no_data_which_inhibits_value_alerts(alerting_store: Store) -> None:
    [offline] = alerting_store.apply_alert_changes([_change(rule="gw_offline", metric="spo2")], at=_at(0))
    [silent] = alerting_store.apply_alert_changes([_change(rule="spo2_silent")], at=_at(0))
    [low] = alerting_store.apply_alert_changes([_change()], at=_at(0))
    [elsewhere] = alerting_store.apply_alert_changes([_change(rule="hr_high", metric="heart_rate")], at=_at(0))
    assert (offline.kind, silent.kind, low.kind) == ("gateway_offline", "no_data", "value")
    assert {i.status for i in alerting_store.notification_items(offline.id)} == {"queued"}
    assert next(i.reason for i in alerting_store.notification_items(silent.id)) == \
        f"inhibited by alert {offline.id} (gw_offline)"
    assert next(i.reason for i in alerting_store.notification_items(low.id)) == \
        f"inhibited by alert {silent.id} (spo2_silent)"
    assert {i.status for i in alerting_store.notification_items(elsewhere.id)} == {"queued"}  # another metric


def test_inhibition_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="equal"):
        InhibitRule.model_validate({"source_kind": "a", "target_kind": "b", "equal": ["gateway_colour"]})


def test_a_restart_mid_episode_continues_the_same_alert(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = open_store(url, AlertingContext(POLICY))
    [alert] = first.apply_alert_changes([_change(last_s=60)], at=_at(0))
    first.close()
    second = open_store(url, AlertingContext(POLICY))
    try:
        assert second.apply_alert_changes([_change(last_s=300)], at=_at(4)) == []
        [same] = second.alerts()
        assert (same.id, same.state, same.last_ns, same.episodes) == (alert.id, "firing", E0 + 300 * S, 1)
        assert [i.purpose for i in second.notification_items(alert.id) if i.channel == "email"] == ["fire"]
        second.apply_alert_changes([_change("resolved", last_s=400)], at=_at(6))
        assert [t.to_state for t in second.transitions(alert.id)] == ["firing", "resolved"]
    finally:
        second.close()


def test_resolving_by_hand_needs_a_live_alert(alerting_store: Store) -> None:
    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(0))
    resolved = alerting_store.resolve(alert.id, "dr.house", "device_problem", _at(1))
    assert resolved is not None and (resolved.state, resolved.resolution, resolved.resolved_by) == (
        "resolved", "device_problem", "dr.house")
    with pytest.raises(LifecycleError):
        alerting_store.resolve(alert.id, "dr.house", "actioned", _at(2))
    assert alerting_store.resolve(2**40, "dr.house", "actioned", _at(2)) is None
    assert alerting_store.acknowledge(2**40, "dr.house", _at(2)) is None


def test_closed_alerts_are_not_reopened_by_replays_but_new_episodes_get_a_new_alert(alerting_store: Store) -> None:
    [alert] = alerting_store.apply_alert_changes([_change("resolved", last_s=100)], at=_at(0))
    alerting_store.tick_alerts(_at(20))
    assert alerting_store.alerts()[0].state == "closed"
    assert alerting_store.apply_alert_changes([_change("open", last_s=60)], at=_at(21)) == []
    [fresh] = alerting_store.apply_alert_changes([_change(start_s=5000, last_s=5100)], at=_at(22))
    assert fresh.id != alert.id and fresh.state == "firing"


# -- properties ------------------------------------------------------------------------------------------

_RULES = ("spo2_low", "hr_high")
_PATIENTS = ("p1", "p2")
_STEP = st.one_of(
    st.tuples(st.just("rule"), st.sampled_from(_RULES), st.sampled_from(_PATIENTS),
              st.sampled_from(["pending", "open", "resolved"]), st.integers(0, 3)),
    st.tuples(st.just("ack"), st.just(""), st.just(""), st.just(""), st.integers(1, 8)),
    st.tuples(st.just("tick"), st.just(""), st.just(""), st.just(""), st.integers(0, 30)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, max_size=30))
def test_one_open_alert_per_patient_and_rule_and_nothing_queued_while_acknowledged(
        steps: list[tuple[str, str, str, str, int]]) -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    store = Store(engine, AlertingContext(POLICY.model_copy(update={"ack_timeout_min": 30.0})))
    now = T0
    episodes: dict[tuple[str, str], int] = {}
    try:
        for kind, rule, patient, state, number in steps:
            now += dt.timedelta(minutes=1)
            if kind == "rule":
                start = episodes.get((rule, patient), 0) + number * 1000
                episodes[(rule, patient)] = start
                store.apply_alert_changes([_change(state, rule=rule, patient=patient, start_s=start,
                                                   last_s=start + 60)], at=now)
            elif kind == "ack":
                with contextlib.suppress(LifecycleError):
                    store.acknowledge(number, "dr.house", now)
            else:
                now += dt.timedelta(minutes=number)
                store.tick_alerts(now)
            alerts = store.alerts(AlertQuery(limit=1000))
            active = [(a.rule, a.patient) for a in alerts if a.state in ("pending", "firing", "acknowledged")]
            assert len(active) == len(set(active))
            unclosed = [(a.rule, a.patient) for a in alerts if a.state != "closed"]
            assert len(unclosed) == len(set(unclosed))
            with store._session() as session:
                for alert in alerts:
                    if alert.state == "acknowledged":
                        assert alert.acknowledged_at is not None
                        queued_after = session.scalars(select(NotificationItem).where(
                            NotificationItem.alert_id == alert.id, NotificationItem.status == "queued",
                            NotificationItem.created_at >= alert.acknowledged_at)).all()
                        assert queued_after == []
    finally:
        store.close()


def test_the_policy_file_is_validated_with_the_field_named(tmp_path: Path) -> None:
    from cloud.alerting import PolicyError, load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("recipients:\n  '*':\n    doctor: [not-an-address]\n")
    with pytest.raises(PolicyError, match=r"policy\.yaml: recipients: Value error, 'not-an-address' is neither"):
        load_policy(path)
    path.write_text("steps:\n  - after_min: 10\n    notify: [doctor]\n  - after_min: 5\n    notify: [family]\n")
    with pytest.raises(PolicyError, match="steps must be in order"):
        load_policy(path)
    path.write_text("steps: [\n")
    with pytest.raises(PolicyError, match="line"):
        load_policy(path)
    path.write_text("repeat_min: {urgent: 0}\n")
    with pytest.raises(PolicyError, match="repeat_min"):
        load_policy(path)
    path.write_text("\n")
    assert load_policy(path) == AlertingPolicy()
    assert [step.notify for step in AlertingPolicy().steps] == [["doctor"], ["care_team"], ["family"]]
    assert EscalationStep(after_min=0, notify=["doctor"]).after_min == 0


def test_migration_0004_carries_alerts_from_before_the_lifecycle_over_and_back(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(Path(cloud.store.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        for index, (state, acked) in enumerate([("open", None), ("open", "2024-05-01 12:00:00"), ("resolved", None)]):
            connection.execute(text(
                "INSERT INTO alerts (rule, patient, metric, severity, episode_start_ns, fired_ns, last_ns, worst_value,"
                " threshold, message, state, acknowledged_at, late) VALUES ('spo2_low', :patient, 'spo2', 'high',"
                " :start, :start, :start, 85, 90, 'm', :state, :acked, 0)"),
                {"patient": f"p{index}", "start": E0 + index, "state": state, "acked": acked})
    engine.dispose()
    store = open_store(url, AlertingContext(POLICY))
    try:
        assert [(a.patient, a.state, a.episode_ns) for a in sorted(store.alerts(), key=lambda a: a.patient)] == [
            ("p0", "firing", E0), ("p1", "acknowledged", E0 + 1), ("p2", "resolved", E0 + 2)]
        assert store.tick_alerts(_at(600)) == 0  # nothing was ever sent for them, and nothing is now
        assert set(inspect(store.engine).get_table_names()) >= {
            "alert_transitions", "notification_items", "notification_deliveries", "silences"}
    finally:
        store.close()
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        states = sorted(connection.execute(text("SELECT patient, state FROM alerts")).all())
    engine.dispose()
    assert states == [("p0", "open"), ("p1", "open"), ("p2", "resolved")]


def test_an_acknowledgement_racing_the_clock_is_never_overwritten(alerting_store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import cloud.store._alerting_store as alerting_module
    from cloud.store import AlertRecord

    [alert] = alerting_store.apply_alert_changes([_change()], at=_at(0))
    original = alerting_module.tick_alerts
    raced: list[bool] = []

    def tick_with_a_racing_ack(session: object, at: dt.datetime, context: AlertingContext) -> int:
        if not raced:
            # The clock has read the alert as firing; a clinician acknowledges it before the clock writes.
            held = session.get(AlertRecord, alert.id)  # type: ignore[attr-defined]
            assert held.state == "firing"
            alerting_store.acknowledge(alert.id, "dr.house", at)
            raced.append(True)
            return original(session, at, context)  # type: ignore[arg-type]
        return original(session, at, context)  # type: ignore[arg-type]

    monkeypatch.setattr(alerting_module, "tick_alerts", tick_with_a_racing_ack)
    alerting_store.tick_alerts(_at(5))  # would send a reminder to a firing alert
    [stored] = alerting_store.alerts()
    assert (stored.state, stored.acknowledged_by) == ("acknowledged", "dr.house")
    assert raced, "the race was not staged"
    assert [i.purpose for i in alerting_store.notification_items(alert.id)] == ["fire", "fire"]
