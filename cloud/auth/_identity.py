"""Users, passwords (argon2id), refresh tokens (rotated, revocable, stored hashed) and login throttling.

Every method is synchronous (SQLAlchemy 2) and takes the time as ``now``; async callers run them in a
worker thread. Throttling lives in the database so it holds across API processes.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.store._registry_models import LoginThrottle, RefreshTokenRecord, UserRecord
from vitals.samples import is_identifier

__all__ = [
    "AuthError",
    "Identity",
    "LoginFailed",
    "Role",
    "ThrottlePolicy",
    "Throttled",
    "User",
]

MIN_PASSWORD_LENGTH = 10


class Role(enum.StrEnum):
    """What a user is: admin (users, gateways, registry, audit), doctor and nurse (their care list), family
    (their own patient, read-only but for marking alerts seen)."""

    ADMIN = "admin"
    DOCTOR = "doctor"
    NURSE = "nurse"
    FAMILY = "family"


class AuthError(ValueError):
    """A user operation that cannot be done (unknown user, taken name, weak password); one line."""


class LoginFailed(AuthError):
    """Wrong user name or password, or a disabled user (the caller cannot tell which)."""


class Throttled(AuthError):
    """Too many failed logins for this user or this address; ``retry_after_s`` until the lock ends."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class User:
    """A user as the API sees it (never the password hash)."""

    id: int
    username: str
    role: Role
    disabled: bool
    token_version: int


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """``user_failures`` failed logins for one user (or ``address_failures`` from one address) within
    ``window`` lock further attempts for ``lockout``."""

    user_failures: int = 5
    address_failures: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)


class Identity:
    """Users and their credentials over one SQLAlchemy engine (the store's)."""

    def __init__(self, engine: Engine, *, hasher: PasswordHasher | None = None,
                 throttle: ThrottlePolicy = ThrottlePolicy(),
                 refresh_ttl: dt.timedelta = dt.timedelta(days=14)) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._hasher = hasher or PasswordHasher()
        self.throttle = throttle
        self.refresh_ttl = refresh_ttl
        # Verified against when the user is unknown, so a wrong name costs as long as a wrong password.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    # -- users -------------------------------------------------------------------------------------
    def add_user(self, username: str, role: Role | str, password: str, *, now: dt.datetime) -> User:
        """Create a user; raises :class:`AuthError` for a taken or invalid name, an unknown role, a weak password."""
        if not is_identifier(username):
            raise AuthError(f"user name {username[:64]!r} is not valid (1-64 letters, digits, . _ -)")
        try:
            role = Role(role)
        except ValueError:
            raise AuthError(f"unknown role {str(role)[:32]!r}; one of {', '.join(r.value for r in Role)}") from None
        _check_password(password)
        try:
            with self._sessions() as session, session.begin():
                if session.scalar(select(UserRecord.id).where(UserRecord.username == username)) is not None:
                    raise AuthError(f"user {username!r} already exists")
                record = UserRecord(username=username, role=role.value, password_hash=self._hasher.hash(password),
                                    disabled=False, token_version=0, created_at=now)
                session.add(record)
        except IntegrityError:
            raise AuthError(f"user {username!r} already exists") from None
        return _user(record)

    def set_password(self, username: str, password: str) -> User:
        """Change a user's password; every token issued before stops working."""
        _check_password(password)
        with self._sessions() as session, session.begin():
            record = _need(session, username)
            record.password_hash = self._hasher.hash(password)
            record.token_version += 1
            self._revoke_all(session, record.id)
        return _user(record)

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        """Disable (or enable) a user; disabling voids their tokens at once."""
        with self._sessions() as session, session.begin():
            record = _need(session, username)
            record.disabled = disabled
            record.token_version += 1
            self._revoke_all(session, record.id)
        return _user(record)

    def users(self) -> list[User]:
        """Every user, ordered by name."""
        with self._sessions() as session:
            return [_user(r) for r in session.scalars(select(UserRecord).order_by(UserRecord.username))]

    def user(self, user_id: int) -> User | None:
        """The user with ``user_id``; None when unknown."""
        with self._sessions() as session:
            record = session.get(UserRecord, user_id)
            return _user(record) if record is not None else None

    def user_by_name(self, username: str) -> User | None:
        """The user called ``username``; None when unknown."""
        with self._sessions() as session:
            record = session.scalar(select(UserRecord).where(UserRecord.username == username))
            return _user(record) if record is not None else None

    # -- login -------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, *, client: str, now: dt.datetime) -> User:
        """The user whose credentials these are; raises :class:`Throttled` while a lock holds (checked before
        the password) and :class:`LoginFailed` otherwise, counting the failure per user and per address."""
        keys = [f"user:{username[:64]}", f"addr:{client[:64]}"]
        with self._sessions() as session:
            self._check_lock(session, keys, now)
            record = session.scalar(select(UserRecord).where(UserRecord.username == username))
        ok = self._verify(record.password_hash if record is not None else self._dummy_hash, password)
        if record is None or not ok or record.disabled:
            with self._sessions() as session, session.begin():
                self._count_failure(session, keys[0], self.throttle.user_failures, now)
                self._count_failure(session, keys[1], self.throttle.address_failures, now)
            raise LoginFailed("wrong user name or password")
        with self._sessions() as session, session.begin():
            found = session.get(LoginThrottle, keys[0])
            if found is not None:
                session.delete(found)
            if self._hasher.check_needs_rehash(record.password_hash):
                session.execute(update(UserRecord).where(UserRecord.id == record.id)
                                .values(password_hash=self._hasher.hash(password)))
        return _user(record)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _check_lock(session: Session, keys: list[str], now: dt.datetime) -> None:
        for key in keys:
            entry = session.get(LoginThrottle, key)
            if entry is not None and entry.locked_until is not None and _aware(entry.locked_until) > now:
                raise Throttled(max(1, int((_aware(entry.locked_until) - now).total_seconds() + 0.999)))

    def _count_failure(self, session: Session, key: str, limit: int, now: dt.datetime) -> None:
        count_failure(session, key, limit, self.throttle, now)

    # -- refresh tokens ----------------------------------------------------------------------------
    def issue_refresh(self, user: User, *, now: dt.datetime, family: str | None = None) -> str:
        """A new refresh token for ``user`` (only its SHA-256 is stored)."""
        token = secrets.token_urlsafe(32)
        with self._sessions() as session, session.begin():
            session.add(RefreshTokenRecord(token_hash=_digest(token), user_id=user.id,
                                           family=family or secrets.token_hex(16), issued_at=now,
                                           expires_at=now + self.refresh_ttl, used=False, revoked=False))
        return token

    def rotate_refresh(self, token: str, *, now: dt.datetime) -> tuple[User, str]:
        """Spend ``token`` and return its user and a new token of the same family. A token used twice
        revokes its whole family; raises :class:`LoginFailed` for any token that is not good."""
        reused = False
        with self._sessions() as session, session.begin():
            record = session.scalar(select(RefreshTokenRecord).where(RefreshTokenRecord.token_hash == _digest(token)))
            if record is None:
                raise LoginFailed("unknown refresh token")
            if record.used or record.revoked:
                session.execute(update(RefreshTokenRecord).where(RefreshTokenRecord.family == record.family)
                                .values(revoked=True))
                reused = True  # committed as the block ends, then refused
        if reused:
            raise LoginFailed("refresh token already used or revoked")
        with self._sessions() as session, session.begin():
            # Spend it in one statement, so two requests racing with the same token cannot both succeed.
            spent = session.execute(update(RefreshTokenRecord)
                                    .where(RefreshTokenRecord.token_hash == _digest(token),
                                           RefreshTokenRecord.used.is_(False), RefreshTokenRecord.revoked.is_(False))
                                    .values(used=True))
            record = session.scalar(select(RefreshTokenRecord).where(RefreshTokenRecord.token_hash == _digest(token)))
            if record is None or int(spent.rowcount or 0) != 1:  # type: ignore[attr-defined]
                raise LoginFailed("refresh token already used or revoked")
            if _aware(record.expires_at) <= now:
                raise LoginFailed("refresh token expired")
            user = session.get(UserRecord, record.user_id)
            if user is None or user.disabled:
                raise LoginFailed("user disabled")
            family = record.family
            found = _user(user)
        return found, self.issue_refresh(found, now=now, family=family)

    def revoke_refresh(self, token: str) -> bool:
        """Revoke the family of ``token`` (logout); False when the token is unknown."""
        with self._sessions() as session, session.begin():
            record = session.scalar(select(RefreshTokenRecord).where(RefreshTokenRecord.token_hash == _digest(token)))
            if record is None:
                return False
            session.execute(update(RefreshTokenRecord).where(RefreshTokenRecord.family == record.family)
                            .values(revoked=True))
            return True

    @staticmethod
    def _revoke_all(session: Session, user_id: int) -> None:
        session.execute(update(RefreshTokenRecord).where(RefreshTokenRecord.user_id == user_id).values(revoked=True))


def count_failure(session: Session, key: str, limit: int, throttle: ThrottlePolicy, now: dt.datetime) -> None:
    """Count one failure of ``key`` (a user or an address) in the throttle table, inside ``session``'s
    transaction: a new window after ``throttle.window``; ``limit`` failures in a window lock ``key`` out
    for ``throttle.lockout``."""
    entry = session.get(LoginThrottle, key)
    if entry is None or now - _aware(entry.window_start) >= throttle.window:
        if entry is None:
            entry = LoginThrottle(key=key, failures=0, window_start=now, locked_until=None)
            session.add(entry)
        entry.failures, entry.window_start, entry.locked_until = 0, now, None
    entry.failures += 1
    if entry.failures >= limit:
        entry.locked_until = now + throttle.lockout


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise AuthError("the password must be at most 1024 characters")


def _need(session: Session, username: str) -> UserRecord:
    record = session.scalar(select(UserRecord).where(UserRecord.username == username))
    if record is None:
        raise AuthError(f"no user {username[:64]!r}")
    return record


def _user(record: UserRecord) -> User:
    return User(record.id, record.username, Role(record.role), record.disabled, record.token_version)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
