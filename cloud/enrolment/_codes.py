"""Enrolment codes in the database: issued for a registered gateway, spent once by the gateway that shows one.

Every method is synchronous (SQLAlchemy 2) and takes the time as ``now``; the API calls them in a worker
thread. Wrong codes are counted per client address in the login throttle's table, so repeated guessing
locks the address out across API processes, just as repeated failed logins do.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth import ThrottlePolicy
from cloud.auth._identity import count_failure
from cloud.enrolment._hashing import code_digest
from cloud.store._enrolment_models import EnrolmentCodeRecord
from cloud.store._registry_models import GatewayPatient, GatewayRecord, LoginThrottle
from vitals.enrolment import CodeFormatError, format_code, new_code, normalise_code

__all__ = ["DEFAULT_CODE_TTL", "ENROL_THROTTLE", "EnrolmentCodes", "EnrolmentError", "IssuedCode", "SpentCode"]

DEFAULT_CODE_TTL = dt.timedelta(hours=24)
ENROL_THROTTLE = ThrottlePolicy(address_failures=10, window=dt.timedelta(minutes=15),
                                lockout=dt.timedelta(minutes=15))
"""10 wrong codes from one address within 15 minutes lock that address out for 15 minutes."""

_KINDS = ("wrong_code", "used_code", "expired_code", "gateway_revoked", "unknown_gateway", "throttled")


class EnrolmentError(ValueError):
    """A code that cannot be issued or spent. ``kind`` is one of ``wrong_code``, ``used_code``,
    ``expired_code``, ``gateway_revoked``, ``unknown_gateway`` or ``throttled`` (then ``retry_after_s``)."""

    def __init__(self, kind: str, message: str, *, retry_after_s: int = 0) -> None:
        assert kind in _KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A new code (shown once, grouped ``ABCD-EFGH-JK``) and when it stops working."""

    code: str
    gateway: str
    patients: tuple[str, ...]
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SpentCode:
    """A code just spent: the row's id (to give it back if the enrolment cannot finish), the gateway and the
    patients bound to it now."""

    id: int
    gateway: str
    patients: tuple[str, ...]


class EnrolmentCodes:
    """Issues and spends enrolment codes over one SQLAlchemy engine (the store's)."""

    def __init__(self, engine: Engine, *, ttl: dt.timedelta = DEFAULT_CODE_TTL,
                 throttle: ThrottlePolicy = ENROL_THROTTLE,
                 random_below: Callable[[int], int] = secrets.randbelow) -> None:
        if ttl <= dt.timedelta(0):
            raise ValueError("enrolment codes need a positive lifetime")
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.ttl = ttl
        self.throttle = throttle
        self._random_below = random_below

    def issue(self, gateway: str, *, created_by: str, now: dt.datetime) -> IssuedCode:
        """A new single-use code for ``gateway``, valid for :attr:`ttl`; raises :class:`EnrolmentError`
        (``unknown_gateway``, ``gateway_revoked``). Earlier codes of the gateway stay valid until used or expired."""
        with self._sessions() as session, session.begin():
            record = session.get(GatewayRecord, gateway)
            if record is None:
                raise EnrolmentError("unknown_gateway", f"no gateway {gateway[:64]!r}; register it first")
            if record.revoked:
                raise EnrolmentError("gateway_revoked", f"gateway {gateway!r} is revoked; register a new gateway")
            patients = _bound(session, gateway)
            while True:  # a clash of two codes is a 1 in 10**14 event; draw again rather than fail
                code = new_code(self._random_below)
                digest = code_digest(code)
                if session.scalar(select(EnrolmentCodeRecord.id).where(EnrolmentCodeRecord.code_hash == digest)) \
                        is None:
                    break
            expires_at = now + self.ttl
            session.add(EnrolmentCodeRecord(code_hash=digest, gateway_id=gateway, patients=json.dumps(patients),
                                            created_by=created_by, created_at=now, expires_at=expires_at))
        return IssuedCode(format_code(code), gateway, tuple(patients), expires_at)

    def spend(self, text: str, *, client: str, now: dt.datetime) -> SpentCode:
        """Spend the code typed as ``text`` (any case, spaces or dashes) from address ``client``.

        Raises :class:`EnrolmentError`: ``throttled`` while the address is locked out (checked first),
        ``wrong_code``, ``used_code``, ``expired_code`` or ``gateway_revoked``; each of these counts as a
        failure of the address. Two gateways racing with one code: exactly one wins.
        """
        key = f"enrol:addr:{client[:64]}"
        with self._sessions() as session:
            self._check_lock(session, key, now)
        try:
            spent = self._spend(text, client, now)
        except EnrolmentError:
            with self._sessions() as session, session.begin():
                self._count_failure(session, key, now)
            raise
        return spent

    def _spend(self, text: str, client: str, now: dt.datetime) -> SpentCode:
        try:
            code = normalise_code(text)
        except CodeFormatError as exc:
            raise EnrolmentError("wrong_code", f"this is not an enrolment code: {exc}") from None
        digest = code_digest(code)
        with self._sessions() as session, session.begin():
            record = session.scalar(select(EnrolmentCodeRecord).where(EnrolmentCodeRecord.code_hash == digest))
            if record is None:
                raise EnrolmentError("wrong_code", "this enrolment code is not known; check it, or ask your care "
                                     "team for a new one")
            if record.used_at is not None:
                raise EnrolmentError("used_code", "this enrolment code has been used already; each code works "
                                     "once. Ask your care team for a new one")
            if _aware(record.expires_at) <= now:
                raise EnrolmentError("expired_code", "this enrolment code has expired; ask your care team for "
                                     "a new one")
            gateway = session.get(GatewayRecord, record.gateway_id)
            if gateway is None or gateway.revoked:
                raise EnrolmentError("gateway_revoked", "the gateway of this code has been revoked; ask your "
                                     "care team")
            # Spent in one statement, so two gateways racing with the same code cannot both succeed.
            claimed = session.execute(update(EnrolmentCodeRecord)
                                      .where(EnrolmentCodeRecord.id == record.id,
                                             EnrolmentCodeRecord.used_at.is_(None))
                                      .values(used_at=now, used_from=client[:64]))
            if int(claimed.rowcount or 0) != 1:  # type: ignore[attr-defined]
                raise EnrolmentError("used_code", "this enrolment code has been used already; each code works "
                                     "once. Ask your care team for a new one")
            return SpentCode(record.id, record.gateway_id, tuple(_bound(session, record.gateway_id)))

    def give_back(self, spent: SpentCode) -> None:
        """Make a spent code usable again (the enrolment could not finish, e.g. the broker was down)."""
        with self._sessions() as session, session.begin():
            session.execute(update(EnrolmentCodeRecord).where(EnrolmentCodeRecord.id == spent.id)
                            .values(used_at=None, used_from=None))

    def _check_lock(self, session: Session, key: str, now: dt.datetime) -> None:
        entry = session.get(LoginThrottle, key)
        if entry is not None and entry.locked_until is not None and _aware(entry.locked_until) > now:
            wait = max(1, int((_aware(entry.locked_until) - now).total_seconds() + 0.999))
            raise EnrolmentError("throttled", f"too many wrong enrolment codes from this address; try again in "
                                 f"{wait} s", retry_after_s=wait)

    def _count_failure(self, session: Session, key: str, now: dt.datetime) -> None:
        count_failure(session, key, self.throttle.address_failures, self.throttle, now)

    def codes(self, gateway: str) -> list[EnrolmentCodeRecord]:
        """Every code issued for ``gateway``, oldest first (hashes only)."""
        with self._sessions() as session:
            return list(session.scalars(select(EnrolmentCodeRecord).where(EnrolmentCodeRecord.gateway_id == gateway)
                                        .order_by(EnrolmentCodeRecord.id)))


def _bound(session: Session, gateway: str) -> list[str]:
    return sorted(session.scalars(select(GatewayPatient.patient_id).where(GatewayPatient.gateway_id == gateway)))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
