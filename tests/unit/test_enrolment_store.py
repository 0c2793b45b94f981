"""Enrolment codes in the store (SQLite and PostgreSQL): issued for a registered gateway, kept only as a hash,
spent once, expiring, and throttled per address after repeated wrong codes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from cloud.auth import ThrottlePolicy
from cloud.enrolment import EnrolmentCodes, EnrolmentError, code_digest
from cloud.registry import Gateway, Patient, Registry
from cloud.store import Store
from vitals.enrolment import normalise_code

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def codes(store: Store) -> Iterator[EnrolmentCodes]:
    registry = Registry(store.engine, lambda: NOW)
    for patient in ("p1", "p2"):
        registry.add_patient(Patient(patient, patient.upper()))
    registry.add_gateway(Gateway("gw-1", "the Smiths", ("p1", "p2")))
    registry.add_gateway(Gateway("gw-gone", "moved away", ("p1",)))
    registry.revoke_gateway("gw-gone")
    yield EnrolmentCodes(store.engine)


def _kind(call: object) -> str:
    with pytest.raises(EnrolmentError) as caught:
        call()  # type: ignore[operator]
    return caught.value.kind


def test_the_migration_makes_the_table(store: Store) -> None:
    columns = {c["name"] for c in inspect(store.engine).get_columns("enrolment_codes")}
    assert columns == {"id", "code_hash", "gateway_id", "patients", "created_by", "created_at", "expires_at",
                       "used_at", "used_from"}


def test_a_code_is_issued_for_a_gateway_and_kept_only_as_its_hash(codes: EnrolmentCodes, store: Store) -> None:
    issued = codes.issue("gw-1", created_by="dr.who", now=NOW)
    assert (issued.gateway, issued.patients, issued.expires_at) == ("gw-1", ("p1", "p2"), NOW + dt.timedelta(hours=24))
    assert len(issued.code) == 12 and issued.code[4] == issued.code[9] == "-"
    [row] = codes.codes("gw-1")
    assert row.code_hash == code_digest(normalise_code(issued.code))
    assert (row.created_by, row.patients, row.used_at) == ("dr.who", '["p1", "p2"]', None)
    with store.engine.connect() as connection:
        dumped = " ".join(str(v) for r in connection.execute(text("SELECT * FROM enrolment_codes")) for v in r)
    assert normalise_code(issued.code) not in dumped and issued.code not in dumped


def test_a_code_works_once(codes: EnrolmentCodes) -> None:
    issued = codes.issue("gw-1", created_by="admin", now=NOW)
    spent = codes.spend(issued.code.lower().replace("-", " "), client="10.0.0.7", now=NOW + dt.timedelta(hours=1))
    assert (spent.gateway, spent.patients) == ("gw-1", ("p1", "p2"))
    [row] = codes.codes("gw-1")
    assert row.used_from == "10.0.0.7" and row.used_at is not None
    assert _kind(lambda: codes.spend(issued.code, client="10.0.0.7", now=NOW + dt.timedelta(hours=2))) == "used_code"


def test_a_code_expires(store: Store, codes: EnrolmentCodes) -> None:
    short = EnrolmentCodes(store.engine, ttl=dt.timedelta(minutes=30))
    issued = short.issue("gw-1", created_by="admin", now=NOW)
    assert issued.expires_at == NOW + dt.timedelta(minutes=30)
    assert _kind(lambda: short.spend(issued.code, client="c", now=NOW + dt.timedelta(minutes=30))) == "expired_code"
    assert short.spend(issued.code, client="c", now=NOW + dt.timedelta(minutes=29)).gateway == "gw-1"


def test_wrong_and_malformed_codes(codes: EnrolmentCodes) -> None:
    assert _kind(lambda: codes.spend("ABCD-EFGH-JK", client="c", now=NOW)) == "wrong_code"
    assert _kind(lambda: codes.spend("not a code", client="c", now=NOW)) == "wrong_code"
    assert _kind(lambda: codes.issue("gw-none", created_by="admin", now=NOW)) == "unknown_gateway"
    assert _kind(lambda: codes.issue("gw-gone", created_by="admin", now=NOW)) == "gateway_revoked"


def test_a_code_of_a_gateway_revoked_later_is_refused(codes: EnrolmentCodes, store: Store) -> None:
    issued = codes.issue("gw-1", created_by="admin", now=NOW)
    Registry(store.engine, lambda: NOW).revoke_gateway("gw-1")
    assert _kind(lambda: codes.spend(issued.code, client="c", now=NOW)) == "gateway_revoked"


def test_a_code_given_back_works_again(codes: EnrolmentCodes) -> None:
    issued = codes.issue("gw-1", created_by="admin", now=NOW)
    codes.give_back(codes.spend(issued.code, client="c", now=NOW))
    assert codes.spend(issued.code, client="c", now=NOW).gateway == "gw-1"


def test_repeated_wrong_codes_lock_the_address_out(store: Store, codes: EnrolmentCodes) -> None:
    throttled = EnrolmentCodes(store.engine, throttle=ThrottlePolicy(address_failures=3,
                                                                     lockout=dt.timedelta(minutes=10)))
    issued = throttled.issue("gw-1", created_by="admin", now=NOW)
    for _ in range(3):
        assert _kind(lambda: throttled.spend("ABCD-EFGH-JK", client="10.0.0.9", now=NOW)) == "wrong_code"
    with pytest.raises(EnrolmentError) as caught:
        throttled.spend(issued.code, client="10.0.0.9", now=NOW + dt.timedelta(minutes=1))  # even the right one
    assert caught.value.kind == "throttled" and caught.value.retry_after_s == 540
    assert throttled.spend(issued.code, client="10.0.0.10", now=NOW).gateway == "gw-1"  # another address
    later = NOW + dt.timedelta(minutes=11)
    assert _kind(lambda: throttled.spend(issued.code, client="10.0.0.9", now=later)) == "used_code"


def test_two_gateways_racing_with_one_code_one_wins(codes: EnrolmentCodes) -> None:
    issued = codes.issue("gw-1", created_by="admin", now=NOW)
    results: list[str] = []
    start = threading.Barrier(4)

    def attempt(client: str) -> None:
        start.wait()
        try:
            codes.spend(issued.code, client=client, now=NOW)
            results.append("won")
        except EnrolmentError as exc:
            results.append(exc.kind)

    threads = [threading.Thread(target=attempt, args=(f"10.0.0.{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == ["used_code", "used_code", "used_code", "won"]
