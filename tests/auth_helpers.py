"""Signing in, for every test that calls the API: users with a role and relations, and their bearer headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from argon2 import PasswordHasher

from cloud.api import default_security
from cloud.auth import Role, User
from cloud.auth.policy import SecurityContext
from cloud.registry import Patient
from cloud.store import Store

PASSWORD = "a long test password"
SECRET = b"t" * 32
# Cheap to compute: tests hash many passwords; production keeps argon2-cffi's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def security_for(store: Store, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> SecurityContext:
    """The API's security over ``store`` with a fixed key and a fast password hash."""
    return default_security(store, clock, secret=SECRET, hasher=FAST_HASHER)


def add_user(security: SecurityContext, username: str, role: Role | str, *, care: Iterable[str] = (),
             family: Iterable[str] = (), password: str = PASSWORD) -> User:
    """A user with ``role`` on the care team of ``care`` and family of ``family`` (patients registered as needed)."""
    user = security.identity.add_user(username, role, password, now=security.clock())
    for patient in [*care, *family]:
        if security.registry.patient(patient) is None:
            security.registry.add_patient(Patient(patient, f"Patient {patient}"))
    for patient in care:
        security.registry.add_care_team_member(patient, username)
    for patient in family:
        security.registry.add_family_member(patient, username)
    return user


def bearer(security: SecurityContext, username: str) -> dict[str, str]:
    """``Authorization`` header of a fresh access token for ``username``."""
    user = security.identity.user_by_name(username)
    assert user is not None, f"no user {username}"
    token = security.signer.issue(user_id=user.id, username=user.username, role=user.role.value,
                                  version=user.token_version, now=security.clock())
    return {"Authorization": f"Bearer {token}"}


def clinician(security: SecurityContext, patients: Iterable[str], username: str = "dr.test") -> dict[str, str]:
    """Headers of a doctor on the care team of ``patients`` (created on first use)."""
    if security.identity.user_by_name(username) is None:
        add_user(security, username, Role.DOCTOR, care=patients)
    else:
        for patient in patients:
            if security.registry.patient(patient) is None:
                security.registry.add_patient(Patient(patient, f"Patient {patient}"))
            security.registry.add_care_team_member(patient, username)
    return bearer(security, username)
