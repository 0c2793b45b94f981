"""The relational store on SQLite and on a real PostgreSQL: migrations, ingest log, dead letters, alerts.

Every test that takes ``store`` or ``database_url`` runs on both backends (see ``tests/unit/conftest.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError

import cloud.store
from cloud.rules import AlertChange
from cloud.store import (
    AlertQuery,
    Base,
    BatchKey,
    DeadLetterEntry,
    IngestCommit,
    LoggedBatch,
    Retention,
    Store,
    open_store,
)
from cloud.store._store import migrate
from vitalbridge.stack import PostgreSQL

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


def _record(store: Store, gateway: str, seq: int, samples: int = 5, *, epoch: str = "e1",
            at: dt.datetime = AT) -> None:
    store.commit_ingest(IngestCommit(at=at, batches=[LoggedBatch(BatchKey(gateway, epoch, seq), "p1", samples)]))


def _summary(store: Store) -> list[tuple[object, ...]]:
    return [(a.rule, a.patient, a.episode_start_ns, a.state, a.last_ns, a.worst_value, a.resolved_ns)
            for a in store.alerts()]


# -- migrations ---------------------------------------------------------------------------------------


def test_migrations_create_every_table(store: Store) -> None:
    inspector = inspect(store.engine)
    assert set(inspector.get_table_names()) >= {"alerts", "dead_letters", "ingest_log", "gateway_epochs",
                                                "rule_states", "alembic_version"}
    uniques = inspector.get_unique_constraints("alerts")
    assert any(set(u["column_names"]) == {"rule", "patient", "episode_start_ns"} for u in uniques)


def test_the_schema_after_migrations_matches_the_models(store: Store) -> None:
    # What alembic's autogenerate would write as the next migration: nothing, on either backend.
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_downgrade_to_nothing_and_up_again(database_url: str) -> None:
    store = open_store(database_url)
    try:
        _record(store, "gw", 1, 10)
        config = Config()
        config.set_main_option("script_location", str(Path(cloud.store.__file__).parent / "migrations"))
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
        migrate(store.engine)
        assert store.ingested_batches() == 0
        _record(store, "gw", 1, 10)
        assert store.ingested_samples() == 10
    finally:
        store.close()


def test_threads_opening_one_new_database_together_migrate_once(database_url: str) -> None:
    # Several cloud services in one process open the store at once (each in a worker thread).
    starting = 4
    barrier = threading.Barrier(starting)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait(60)
        try:
            opened.append(open_store(database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == [] and len(opened) == starting
        _record(opened[0], "gw", 1, 3)
        assert opened[-1].ingested_samples() == 3
    finally:
        for store in opened:
            store.close()


_OPEN_WHEN_TOLD = """
import pathlib, sys, time
from cloud.store import open_store
go = pathlib.Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
open_store(sys.argv[1]).close()
"""


def test_processes_starting_together_on_a_new_database_migrate_once(database_url: str, tmp_path: Path) -> None:
    # API and ingest pods (or `cloud ingest --workers N`) start at once against a new database: each
    # migrates, one after the other (an advisory lock on PostgreSQL, a lock file beside SQLite's file).
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", _OPEN_WHEN_TOLD, database_url, str(go)],
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
    go.touch()
    outcomes = [(child.wait(120), child.communicate()[1]) for child in children]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    store = open_store(database_url)
    try:
        assert store.ingested_batches() == 0
    finally:
        store.close()


def test_reopening_keeps_data_and_reapplies_nothing(database_url: str) -> None:
    first = open_store(database_url)
    _record(first, "gw", 1, 10)
    first.add_dead_letter("vb/v1/gw/data", "decode: junk", b"\x00", AT)
    first.close()
    second = open_store(database_url)
    try:
        assert second.seen([BatchKey("gw", "e1", 1)]) == {BatchKey("gw", "e1", 1)}
        assert second.dead_letter_count() == 1
        assert second.ingested_samples() == 10
    finally:
        second.close()


# -- ingest log ---------------------------------------------------------------------------------------


def test_ingest_log_dedups_by_gateway_epoch_and_seq(store: Store) -> None:
    key = BatchKey("gw", "e1", 1)
    assert store.seen([key]) == set()
    _record(store, "gw", 1, 5)
    assert store.seen([key, BatchKey("gw", "e1", 2)]) == {key}
    with pytest.raises(IntegrityError):
        _record(store, "gw", 1, 5)  # the transaction is refused whole
    _record(store, "gw", 2, 7)
    _record(store, "other", 1, 3)  # seq is per gateway
    _record(store, "gw", 1, 4, epoch="e2")  # and per spool epoch: a reinstalled gateway starts again
    assert store.seen([BatchKey("gw", "e2", 1), BatchKey("gw", "e2", 2)]) == {BatchKey("gw", "e2", 1)}
    assert store.ingested_samples() == 19
    assert store.ingested_batches() == 4


def test_many_keys_are_looked_up_in_chunks(store: Store) -> None:
    keys = [LoggedBatch(BatchKey("gw", "e1", seq), "p1", 1) for seq in range(0, 2000, 2)]
    store.commit_ingest(IngestCommit(at=AT, batches=keys))
    wanted = [BatchKey("gw", "e1", seq) for seq in range(2000)]
    assert store.seen(wanted) == {batch.key for batch in keys}


def test_ingest_log_handles_large_sequence_numbers(store: Store) -> None:
    _record(store, "gw", 2**63 - 1, 1)
    assert store.seen([BatchKey("gw", "e1", 2**63 - 1)])


def test_a_sequence_going_backwards_within_an_epoch_is_reported_not_dropped(store: Store) -> None:
    result = store.commit_ingest(IngestCommit(at=AT, batches=[LoggedBatch(BatchKey("gw", "e1", 10), "p1", 1)]))
    assert result.backwards == []
    result = store.commit_ingest(IngestCommit(at=AT, batches=[LoggedBatch(BatchKey("gw", "e1", 3), "p1", 1),
                                                              LoggedBatch(BatchKey("gw", "e1", 11), "p1", 1)]))
    assert result.backwards == [(BatchKey("gw", "e1", 3), 10)]
    assert store.seen([BatchKey("gw", "e1", 3)])  # stored all the same
    (epoch,) = store.gateway_epochs("gw")
    assert (epoch.epoch, epoch.high_seq, epoch.backwards) == ("e1", 11, 1)
    # A new epoch starts from 0 without complaint.
    fresh = store.commit_ingest(IngestCommit(at=AT, batches=[LoggedBatch(BatchKey("gw", "e2", 0), "p1", 1)]))
    assert fresh.backwards == []


def test_one_transaction_writes_everything_or_nothing(store: Store) -> None:
    _record(store, "gw", 1)
    commit = IngestCommit(
        at=AT, batches=[LoggedBatch(BatchKey("gw", "e1", 2), "p1", 1), LoggedBatch(BatchKey("gw", "e1", 1), "p1", 1)],
        states={("spo2_low", "p1"): {"watermark": 5}}, changes=[_change()],
        dead_letters=[DeadLetterEntry("vb/v1/gw/data", "decode: junk", b"x")],
    )
    with pytest.raises(IntegrityError):
        store.commit_ingest(commit)
    assert store.seen([BatchKey("gw", "e1", 2)]) == set()
    assert store.rule_states([("spo2_low", "p1")]) == {}
    assert store.alerts() == [] and store.dead_letter_count() == 0


def test_rule_states_round_trip_and_update(store: Store) -> None:
    state = {"watermark": T0, "rule": {"episode": {"start_ns": T0, "worst": 85.5, "fired_ns": None}}}
    store.commit_ingest(IngestCommit(at=AT, states={("r", "p1"): state, ("r", "p2"): {"watermark": 1}}))
    assert store.rule_states([("r", "p1"), ("r", "p3")]) == {("r", "p1"): state}
    store.commit_ingest(IngestCommit(at=AT, states={("r", "p1"): {"watermark": 2}}))
    assert store.all_rule_states() == {("r", "p1"): {"watermark": 2}, ("r", "p2"): {"watermark": 1}}


def test_prune_keeps_the_dedup_horizon_and_bounds_dead_letters(store: Store) -> None:
    old, recent = AT - dt.timedelta(days=20), AT - dt.timedelta(days=1)
    _record(store, "gw", 1, at=old)
    _record(store, "gw", 2, at=recent)
    for day in (100, 10, 3, 1):
        store.add_dead_letter("vb/v1/gw/data", f"decode: day {day}", b"payload", AT - dt.timedelta(days=day))
    result = store.prune(AT, Retention(ingest_log=dt.timedelta(days=14), dead_letter_payload=dt.timedelta(days=7),
                                       dead_letter=dt.timedelta(days=90), dead_letter_max_rows=2))
    assert store.seen([BatchKey("gw", "e1", 1), BatchKey("gw", "e1", 2)]) == {BatchKey("gw", "e1", 2)}
    letters = store.dead_letters()
    assert [(d.reason, d.payload, d.size) for d in letters] == [("decode: day 1", b"payload", 7),
                                                                ("decode: day 3", b"payload", 7)]
    assert (result.ingest_log, result.dead_letters) == (1, 2)


def test_ping_raises_when_the_sqlite_file_is_gone(tmp_path: Path) -> None:
    db_path = tmp_path / "cloud.db"
    store = open_store(f"sqlite:///{db_path}")
    store.ping()
    store.close()
    db_path.unlink()
    db_path.mkdir()  # now a directory: the database cannot be opened
    with pytest.raises(OperationalError, match="unable to open"):
        store.ping()


@pytest.mark.postgresql
def test_ping_raises_when_the_postgresql_database_is_gone(postgres: PostgreSQL) -> None:
    url = postgres.create_database("vanishing")
    store = open_store(url)
    try:
        store.ping()
        postgres.drop_database("vanishing")  # disconnects the store's pooled connection too
        with pytest.raises(OperationalError, match="does not exist"):
            store.ping()
    finally:
        store.close()


def test_times_read_back_are_the_instants_written(store: Store) -> None:
    # PostgreSQL answers in its session's zone (the test server's is far from UTC); SQLite keeps none.
    later = AT + dt.timedelta(minutes=5, microseconds=250)
    _record(store, "gw", 1, at=AT)
    _record(store, "gw", 2, at=later)
    store.add_dead_letter("vb/v1/gw/data", "decode: junk", b"x", later)
    (epoch,) = store.gateway_epochs("gw")
    read = [epoch.first_seen, epoch.last_seen, store.dead_letters()[0].received_at]
    assert [value if value.tzinfo else value.replace(tzinfo=dt.UTC) for value in read] == [AT, later, later]


def test_ingested_samples_is_zero_when_empty(store: Store) -> None:
    assert store.ingested_samples() == 0


# -- dead letters -------------------------------------------------------------------------------------


def test_dead_letters_keep_topic_reason_and_payload_newest_first(store: Store) -> None:
    store.add_dead_letter("vb/v1/gw/data", "decode: not valid CBOR", b"\xff\x00", AT)
    store.add_dead_letter("x" * 300, "topic: foreign", b"", AT + dt.timedelta(seconds=1))
    assert store.dead_letter_count() == 2
    letters = store.dead_letters()
    assert [(d.topic, d.reason, d.size, d.payload) for d in letters] == [
        ("x" * 256, "topic: foreign", 0, b""),
        ("vb/v1/gw/data", "decode: not valid CBOR", 2, b"\xff\x00"),
    ]
    assert letters[0].id > letters[1].id
    assert [d.id for d in store.dead_letters(limit=1)] == [letters[0].id]


# -- alerts -------------------------------------------------------------------------------------------


def test_alert_upsert_is_idempotent(store: Store) -> None:
    changes = [_change(last_s=60), _change(last_s=90, worst=82.0)]
    opened = store.apply_alert_changes(changes)
    assert [(a.patient, a.state, a.worst_value) for a in opened] == [("p1", "firing", 82.0)]
    before = _summary(store)
    assert store.apply_alert_changes(changes) == []
    assert _summary(store) == before
    assert before == [("spo2_low", "p1", T0, "firing", T0 + 90 * S, 82.0, None)]


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


def test_distinct_rules_and_patients_are_distinct_alerts_and_a_new_episode_is_a_repeat(store: Store) -> None:
    opened = store.apply_alert_changes([
        _change(), _change(start_s=1000, last_s=1100), _change(rule="other"), _change(patient="p2"),
    ])
    assert len(opened) == 3
    assert len(store.alerts()) == 3
    [alert] = [a for a in store.alerts() if a.rule == "spo2_low" and a.patient == "p1"]
    assert (alert.episode_start_ns, alert.episode_ns, alert.episodes) == (T0, T0 + 1000 * S, 2)


def test_alert_queries_filter_and_order_newest_first(store: Store) -> None:
    store.apply_alert_changes([_change(start_s=0), _change(start_s=1000, last_s=1100, rule="other"),
                               _change(patient="p2")])
    store.apply_alert_changes([_change("resolved", start_s=0, resolved_s=500)])
    assert [a.episode_start_ns for a in store.alerts(AlertQuery(patient="p1"))] == [T0 + 1000 * S, T0]
    assert [(a.patient, a.episode_start_ns) for a in store.alerts(AlertQuery(state="resolved"))] == [("p1", T0)]
    assert len(store.alerts(AlertQuery(state="open"))) == 2
    assert len(store.alerts(AlertQuery(state="unacknowledged"))) == 2
    assert store.alerts(AlertQuery(severity="critical")) == []
    assert len(store.alerts(AlertQuery(limit=1))) == 1
    assert store.alerts(AlertQuery(patient="nobody")) == []


def test_alerts_fired_at_the_same_instant_come_newest_first(store: Store) -> None:
    store.apply_alert_changes([_change(patient=f"p{n}") for n in range(5)])  # one fired_ns for all
    assert [a.patient for a in store.alerts()] == ["p4", "p3", "p2", "p1", "p0"]


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
    assert stored.acknowledged_at == AT and stored.acknowledged_at.tzinfo is not None  # the zone survives SQLite


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


# -- late (backfilled) episodes -------------------------------------------------------------------------


def _late(state: str = "open", **kwargs: object) -> AlertChange:
    return dataclasses.replace(_change(state, **kwargs), late=True)  # type: ignore[arg-type]


def test_a_late_episode_with_no_alert_opens_one_marked_late(store: Store) -> None:
    opened = store.apply_alert_changes([_late("resolved", start_s=0, last_s=90, resolved_s=200)])
    assert [(a.state, a.late, a.resolved_ns) for a in opened] == [("resolved", True, T0 + 200 * S)]


def test_a_late_view_of_an_alerted_episode_joins_it_and_widens_it(store: Store) -> None:
    store.apply_alert_changes([_change(start_s=100, last_s=200, worst=86.0)])
    # The backfill shows the episode began earlier and went deeper.
    assert store.apply_alert_changes([_late(start_s=40, last_s=150, worst=81.0)]) == []
    [alert] = store.alerts()
    assert (alert.episode_start_ns, alert.last_ns, alert.worst_value, alert.state, alert.late) == (
        T0 + 40 * S, T0 + 200 * S, 81.0, "firing", False)


def test_a_late_resolution_does_not_close_an_episode_that_went_on(store: Store) -> None:
    store.apply_alert_changes([_change(start_s=100, last_s=500)])
    store.apply_alert_changes([_late("resolved", start_s=100, last_s=200, resolved_s=300)])
    assert store.alerts()[0].state == "firing"
    # One whose last news is older than the late resolution is resolved by it.
    store.apply_alert_changes([_change(start_s=1000, last_s=1100, patient="p2")])
    store.apply_alert_changes([_late("resolved", start_s=1000, last_s=1100, resolved_s=1200, patient="p2")])
    assert [(a.patient, a.state) for a in store.alerts(AlertQuery(patient="p2"))] == [("p2", "resolved")]


def test_late_episodes_apart_from_alerts_are_their_own_alerts(store: Store) -> None:
    store.apply_alert_changes([_change(start_s=5000, last_s=5100)])
    opened = store.apply_alert_changes([_late("resolved", start_s=0, last_s=90, resolved_s=200),
                                        _late("resolved", start_s=0, last_s=95, resolved_s=210)])
    assert len(opened) == 1  # the second change joins the first, in the same call
    assert len(store.alerts()) == 2


# -- several ingest workers on one PostgreSQL ------------------------------------------------------------


@pytest.mark.postgresql
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_ingest_transactions_never_move_an_epoch_back(store: Store) -> None:
    # Two workers log batches of one epoch at once: the second read the epoch before the first
    # committed, and must not write its older view of the highest sequence number over the newer one.
    _record(store, "gw", 10)
    first = store._session()
    first.begin()
    Store._log_batches(first, [LoggedBatch(BatchKey("gw", "e1", 12), "p1", 1)], AT)
    second = threading.Thread(target=_record, args=(store, "gw", 11))
    second.start()
    try:
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        deadline = time.monotonic() + 60
        with store.engine.connect() as probe:
            while not probe.execute(text(waiting)).scalar() and time.monotonic() < deadline:
                time.sleep(0.02)
        first.commit()
    finally:
        first.close()
        second.join(60)
    (epoch,) = store.gateway_epochs("gw")
    assert (epoch.high_seq, epoch.backwards) == (12, 0)
    keys = [BatchKey("gw", "e1", seq) for seq in (10, 11, 12)]
    assert store.seen(keys) == set(keys)


@pytest.mark.postgresql
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_logging_the_same_gateways_in_another_order_do_not_deadlock(store: Store) -> None:
    # Rows are locked in key order, whatever the order of the batches in each worker's micro-batch.
    _record(store, "gw-a", 1)
    _record(store, "gw-b", 1)
    first = store._session()
    first.begin()
    Store._log_batches(first, [LoggedBatch(BatchKey("gw-a", "e1", 2), "p1", 1)], AT)
    errors: list[BaseException] = []

    def second_worker() -> None:
        try:
            store.commit_ingest(IngestCommit(at=AT, batches=[LoggedBatch(BatchKey("gw-b", "e1", 3), "p1", 1),
                                                             LoggedBatch(BatchKey("gw-a", "e1", 3), "p1", 1)]))
        except BaseException as exc:
            errors.append(exc)

    second = threading.Thread(target=second_worker)
    second.start()
    try:
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        deadline = time.monotonic() + 60
        with store.engine.connect() as probe:
            while not probe.execute(text(waiting)).scalar() and time.monotonic() < deadline:
                time.sleep(0.02)
        Store._log_batches(first, [LoggedBatch(BatchKey("gw-b", "e1", 2), "p1", 1)], AT)
        first.commit()
    finally:
        first.close()
        second.join(60)
    assert errors == []
    assert {(e.gateway, e.high_seq) for gw in ("gw-a", "gw-b") for e in store.gateway_epochs(gw)} == {
        ("gw-a", 3), ("gw-b", 3)}
