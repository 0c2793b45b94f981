"""The relational store on a temporary SQLite file: migrations, ingest log, dead letters, alerts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from sqlalchemy import inspect

from cloud.rules import AlertChange
from cloud.store import AlertQuery, Store, open_store

S = 10**9
T0 = 1_700_000_000 * S
AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _change(state: str = "open", *, start_s: int = 0, last_s: int = 60, worst: float = 85.0,
            patient: str = "p1", rule: str = "spo2_low", resolved_s: int | None = None) -> AlertChange:
    return AlertChange(
        rule=rule, patient=patient, metric="spo2", severity="high", episode_start_ns=T0 + start_s * S,
        fired_ns=T0 + (start_s + 60) * S, last_ns=T0 + last_s * S, worst_value=worst, threshold=90.0,
        message=f"spo2 below 90 % (worst {worst:g} %)", state=state,  # type: ignore[arg-type]
        resolved_ns=None if resolved_s is None else T0 + resolved_s * S,
    )


def _summary(store: Store) -> list[tuple[object, ...]]:
    return [(a.rule, a.patient, a.episode_start_ns, a.state, a.last_ns, a.worst_value, a.resolved_ns)
            for a in store.alerts()]


# -- migrations ---------------------------------------------------------------------------------------


def test_migrations_create_every_table(store: Store) -> None:
    inspector = inspect(store.engine)
    assert set(inspector.get_table_names()) >= {"alerts", "dead_letters", "ingested_batches", "alembic_version"}
    uniques = inspector.get_unique_constraints("alerts")
    assert any(set(u["column_names"]) == {"rule", "patient", "episode_start_ns"} for u in uniques)


def test_reopening_keeps_data_and_reapplies_nothing(db_path: Path) -> None:
    first = open_store(f"sqlite:///{db_path}")
    assert first.record_batch("gw", 1, "p1", 10, AT)
    first.add_dead_letter("vb/v1/gw/data", "decode: junk", b"\x00", AT)
    first.close()
    second = open_store(f"sqlite:///{db_path}")
    try:
        assert second.seen_batch("gw", 1)
        assert second.dead_letter_count() == 1
        assert second.ingested_samples() == 10
    finally:
        second.close()


# -- ingest log ---------------------------------------------------------------------------------------


def test_ingest_log_dedups_by_gateway_and_seq(store: Store) -> None:
    assert not store.seen_batch("gw", 1)
    assert store.record_batch("gw", 1, "p1", 5, AT) is True
    assert store.seen_batch("gw", 1)
    assert store.record_batch("gw", 1, "p1", 5, AT) is False
    assert store.record_batch("gw", 2, "p1", 7, AT) is True
    assert store.record_batch("other", 1, "p2", 3, AT) is True  # seq is per gateway
    assert not store.seen_batch("gw", 3)
    assert store.ingested_samples() == 15


def test_ingest_log_handles_large_sequence_numbers(store: Store) -> None:
    assert store.record_batch("gw", 2**63 - 1, "p1", 1, AT)
    assert store.seen_batch("gw", 2**63 - 1)


def test_ingested_samples_is_zero_when_empty(store: Store) -> None:
    assert store.ingested_samples() == 0


# -- dead letters -------------------------------------------------------------------------------------


def test_dead_letters_keep_topic_reason_and_payload_newest_first(store: Store) -> None:
    first = store.add_dead_letter("vb/v1/gw/data", "decode: not valid CBOR", b"\xff\x00", AT)
    second = store.add_dead_letter("x" * 300, "topic: foreign", b"", AT + dt.timedelta(seconds=1))
    assert second > first
    assert store.dead_letter_count() == 2
    letters = store.dead_letters()
    assert [(d.id, d.topic, d.reason, d.size, d.payload) for d in letters] == [
        (second, "x" * 256, "topic: foreign", 0, b""),
        (first, "vb/v1/gw/data", "decode: not valid CBOR", 2, b"\xff\x00"),
    ]
    assert [d.id for d in store.dead_letters(limit=1)] == [second]


# -- alerts -------------------------------------------------------------------------------------------


def test_alert_upsert_is_idempotent(store: Store) -> None:
    changes = [_change(last_s=60), _change(last_s=90, worst=82.0)]
    opened = store.apply_alert_changes(changes)
    assert [(a.patient, a.state, a.worst_value) for a in opened] == [("p1", "open", 82.0)]
    before = _summary(store)
    assert store.apply_alert_changes(changes) == []
    assert _summary(store) == before
    assert before == [("spo2_low", "p1", T0, "open", T0 + 90 * S, 82.0, None)]


def test_alert_updates_and_resolves(store: Store) -> None:
    store.apply_alert_changes([_change(last_s=60)])
    store.apply_alert_changes([_change(last_s=120, worst=80.0)])
    store.apply_alert_changes([_change("resolved", last_s=120, worst=80.0, resolved_s=200)])
    assert _summary(store) == [("spo2_low", "p1", T0, "resolved", T0 + 120 * S, 80.0, T0 + 200 * S)]


def test_resolved_alert_is_not_reopened_by_a_replay(store: Store) -> None:
    store.apply_alert_changes([_change(last_s=60)])
    store.apply_alert_changes([_change("resolved", last_s=120, worst=80.0, resolved_s=200)])
    assert store.apply_alert_changes([_change(last_s=60), _change(last_s=120, worst=80.0)]) == []
    assert _summary(store) == [("spo2_low", "p1", T0, "resolved", T0 + 120 * S, 80.0, T0 + 200 * S)]


def test_replay_of_an_older_open_state_does_not_roll_the_alert_back(store: Store) -> None:
    store.apply_alert_changes([_change(last_s=300, worst=75.0)])
    store.apply_alert_changes([_change(last_s=60, worst=88.0)])  # redelivered older batch
    alert = store.alerts()[0]
    assert (alert.last_ns, alert.worst_value, alert.message) == (T0 + 300 * S, 75.0, "spo2 below 90 % (worst 75 %)")


def test_distinct_episodes_rules_and_patients_are_distinct_alerts(store: Store) -> None:
    opened = store.apply_alert_changes([
        _change(), _change(start_s=1000, last_s=1100), _change(rule="other"), _change(patient="p2"),
    ])
    assert len(opened) == 4
    assert len(store.alerts()) == 4


def test_alert_queries_filter_and_order_newest_first(store: Store) -> None:
    store.apply_alert_changes([_change(start_s=0), _change(start_s=1000, last_s=1100), _change(patient="p2")])
    store.apply_alert_changes([_change("resolved", start_s=0, resolved_s=500)])
    assert [a.episode_start_ns for a in store.alerts(AlertQuery(patient="p1"))] == [T0 + 1000 * S, T0]
    assert [(a.patient, a.episode_start_ns) for a in store.alerts(AlertQuery(state="resolved"))] == [("p1", T0)]
    assert len(store.alerts(AlertQuery(state="open"))) == 2
    assert len(store.alerts(AlertQuery(limit=1))) == 1
    assert store.alerts(AlertQuery(patient="nobody")) == []


def test_acknowledge_records_who_once(store: Store) -> None:
    [alert] = store.apply_alert_changes([_change()])
    acked = store.acknowledge(alert.id, "dr.house", AT)
    assert acked is not None
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("dr.house", AT)
    again = store.acknowledge(alert.id, "dr.who", AT + dt.timedelta(hours=1))
    assert again is not None and again.acknowledged_by == "dr.house"
    stored = store.alerts()[0]
    assert stored.acknowledged_by == "dr.house"
    assert stored.acknowledged_at is not None
    assert stored.acknowledged_at.replace(tzinfo=dt.UTC) == AT  # SQLite keeps no zone


def test_acknowledge_unknown_alert(store: Store) -> None:
    assert store.acknowledge(12345, "dr.house", AT) is None


def test_acknowledged_alert_keeps_its_acknowledgement_through_updates(store: Store) -> None:
    [alert] = store.apply_alert_changes([_change()])
    store.acknowledge(alert.id, "dr.house", AT)
    store.apply_alert_changes([_change(last_s=500, worst=70.0)])
    stored = store.alerts()[0]
    assert (stored.acknowledged_by, stored.worst_value) == ("dr.house", 70.0)


def test_store_returns_detached_records(store: Store) -> None:
    [alert] = store.apply_alert_changes([dataclasses.replace(_change(), message="m")])
    assert alert.message == "m" and alert.id is not None
