"""The audit trail: append-only rows in a hash chain that finds an edited, a deleted and a cut-off row,
and pruning that keeps what is left verifiable."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from cloud.audit import GENESIS, AuditEvent, AuditLog, AuditQuery, row_hash, verify_chain
from cloud.store import Store

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _event(i: int, patient: str | None = "p1", actor: str = "dr.who") -> AuditEvent:
    return AuditEvent(at=NOW + dt.timedelta(seconds=i), action="vitals.read", target=f"GET /api/v1/x/{i}",
                      client="10.0.0.1", status=200, outcome="allowed", actor=actor, role="doctor", patient=patient)


@pytest.fixture
def audit(store: Store) -> AuditLog:
    log = AuditLog(store.engine)
    log.append([_event(i) for i in range(1, 6)])
    return log


def test_a_fresh_chain_verifies(audit: AuditLog) -> None:
    verdict = audit.verify()
    assert (verdict.ok, verdict.checked) == (True, 5)
    assert audit.head()[0] == 5


def test_an_edited_row_is_found(store: Store, audit: AuditLog) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'someone.else' WHERE id = 3"))
    verdict = audit.verify()
    assert (verdict.ok, verdict.first_bad_id, verdict.reason) == (False, 3, "its content does not match its hash")


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(store: Store, audit: AuditLog) -> None:
    [row] = [e for e in audit.entries() if e.id == 3]
    with store.engine.begin() as connection:
        prev = connection.execute(text("SELECT prev_hash FROM audit_events WHERE id = 3")).scalar_one()
        fields = {"id": 3, "at_us": 0, "actor": "someone.else", "role": row.role, "patient": row.patient,
                  "action": row.action, "target": row.target, "client": row.client, "status": row.status,
                  "outcome": row.outcome}
        connection.execute(text("UPDATE audit_events SET actor = 'someone.else', at_us = 0, hash = :h WHERE id = 3"),
                           {"h": row_hash(prev, fields)})
    verdict = audit.verify()
    assert (verdict.ok, verdict.first_bad_id) == (False, 4)


def test_a_deleted_row_is_found(store: Store, audit: AuditLog) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id = 2"))
    verdict = audit.verify()
    assert (verdict.ok, verdict.first_bad_id, verdict.reason) == (False, 2, "row 2 is missing")


def test_a_deleted_tail_is_found(store: Store, audit: AuditLog) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id >= 4"))
    verdict = audit.verify()
    assert (verdict.ok, verdict.first_bad_id) == (False, 4)


def test_pruning_keeps_the_rest_verifiable_and_moves_the_anchor(store: Store, audit: AuditLog) -> None:
    assert audit.prune(NOW + dt.timedelta(seconds=3)) == 2  # rows 1 and 2 are older
    assert [e.id for e in audit.entries()] == [5, 4, 3]
    assert audit.verify().ok
    audit.append([_event(9)])
    assert audit.verify().ok and audit.head()[0] == 6
    with store.engine.begin() as connection:  # removing the oldest kept row is still found
        connection.execute(text("DELETE FROM audit_events WHERE id = 3"))
    assert audit.verify().first_bad_id == 3


def test_filters(audit: AuditLog) -> None:
    audit.append([_event(10, patient="p2", actor="nurse"), _event(11, patient=None, actor="nurse")])
    assert [e.id for e in audit.entries(AuditQuery(patient="p2"))] == [6]
    assert [e.id for e in audit.entries(AuditQuery(actor="nurse"))] == [7, 6]
    assert [e.id for e in audit.entries(AuditQuery(since=NOW + dt.timedelta(seconds=10)))] == [7, 6]
    assert [e.id for e in audit.entries(AuditQuery(before_id=3))] == [2, 1]
    assert audit.entries(AuditQuery(limit=1))[0].at == NOW + dt.timedelta(seconds=11)


_fields = st.fixed_dictionaries({
    "at_us": st.integers(0, 2**62), "actor": st.none() | st.text(max_size=20), "role": st.none() | st.text(max_size=5),
    "patient": st.none() | st.text(max_size=20), "action": st.text(max_size=20), "target": st.text(max_size=40),
    "client": st.text(max_size=15), "status": st.integers(100, 599), "outcome": st.sampled_from(["allowed", "denied"]),
})


def _chain(contents: list[dict[str, object]]) -> list[dict[str, object]]:
    rows, prev = [], GENESIS
    for i, content in enumerate(contents, start=1):
        row = {"id": i, **content}
        digest = row_hash(prev, row)
        rows.append({**row, "prev_hash": prev, "hash": digest})
        prev = digest
    return rows


@given(st.lists(_fields, min_size=1, max_size=12), st.data())
@settings(max_examples=150, deadline=None)
def test_any_single_change_is_found_at_its_row(contents: list[dict[str, object]], data: st.DataObject) -> None:
    rows = _chain(contents)
    last_id, last_hash = len(rows), str(rows[-1]["hash"])
    assert verify_chain(rows, anchor_id=0, anchor_hash=GENESIS, last_id=last_id, last_hash=last_hash).ok
    index = data.draw(st.integers(0, len(rows) - 1))
    name = data.draw(st.sampled_from(["id", "at_us", "actor", "role", "patient", "action", "target", "client",
                                      "status", "outcome", "prev_hash"]))
    changed = [dict(row) for row in rows]
    value = changed[index][name]
    changed[index][name] = value + 1 if isinstance(value, int) else f"{value}!"
    verdict = verify_chain(changed, anchor_id=0, anchor_hash=GENESIS, last_id=last_id, last_hash=last_hash)
    assert (verdict.ok, verdict.first_bad_id) == (False, index + 1)
    removed = rows[:index] + rows[index + 1:]
    verdict = verify_chain(removed, anchor_id=0, anchor_hash=GENESIS, last_id=last_id, last_hash=last_hash)
    assert (verdict.ok, verdict.first_bad_id) == (False, index + 1)
