"""Patients held by one ingest worker's transaction: a second worker waits, then reads what the first wrote."""

from __future__ import annotations

import datetime as dt
import threading

from cloud.store import IngestCommit, Store

AT = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_a_second_worker_waits_for_the_first_and_continues_from_its_state(store: Store) -> None:
    key = ("spo2_low", "pt-1")
    first = store.lock_patients(["pt-1", "pt-2"])
    assert first.rule_states([key]) == {}
    reached = threading.Event()
    seen: dict[str, object] = {}

    def second_worker() -> None:
        lock = store.lock_patients(["pt-1"])  # blocks while the first holds pt-1
        reached.set()
        state = lock.rule_states([key])
        seen["state"] = state
        lock.commit(IngestCommit(at=AT, states={key: {"n": state[key]["n"] + 1}}))

    thread = threading.Thread(target=second_worker)
    thread.start()
    assert not reached.wait(0.5), "the second worker got the patient while the first held it"
    first.commit(IngestCommit(at=AT, states={key: {"n": 1}}))
    thread.join(20)
    assert reached.is_set() and seen["state"] == {key: {"n": 1}}
    assert store.rule_states([key]) == {key: {"n": 2}}  # no update lost


def test_workers_on_different_patients_do_not_wait_on_each_other_on_postgresql(store: Store) -> None:
    first = store.lock_patients(["pt-a"])
    done = threading.Event()

    def other() -> None:
        store.lock_patients(["pt-b"]).commit(IngestCommit(at=AT, states={("r", "pt-b"): {"x": 1}}))
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    finished = done.wait(2)  # well inside SQLite's 5 s busy timeout
    first.rollback()
    thread.join(20)
    # SQLite has one write lock for the whole database: there the other worker waits its turn.
    assert finished == (store.engine.dialect.name == "postgresql")
    assert store.rule_states([("r", "pt-b")]) == {("r", "pt-b"): {"x": 1}}


def test_a_rolled_back_hold_writes_nothing(store: Store) -> None:
    lock = store.lock_patients(["pt-1"])
    lock.rollback()
    assert store.rule_states([("r", "pt-1")]) == {}
    store.lock_patients(["pt-1"]).commit(IngestCommit(at=AT, states={("r", "pt-1"): {"v": 3}}))
    assert store.rule_states([("r", "pt-1")]) == {("r", "pt-1"): {"v": 3}}
