"""Registry operations: patients, care teams, family members, gateways and devices.

Every method is synchronous (SQLAlchemy 2); async callers run them in a worker thread. A name that is
not known raises :class:`RegistryError` with one line a person can act on.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.store._registry_models import (
    CareTeamMember,
    DeviceRecord,
    FamilyMember,
    GatewayPatient,
    GatewayRecord,
    PatientRecord,
    UserRecord,
)
from vitals.samples import is_identifier

__all__ = [
    "Device",
    "Gateway",
    "GatewayBinding",
    "GatewayBindings",
    "Patient",
    "Registry",
    "RegistryError",
    "Relation",
]


class RegistryError(ValueError):
    """A registry change that cannot be made (unknown patient, user or gateway; a duplicate id)."""

    def __init__(self, message: str, *, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind  # "not_found", "conflict" or "invalid"


class Relation(enum.Enum):
    """How a user stands to a patient: on the care team, or family."""

    CARE = "care"
    FAMILY = "family"


@dataclass(frozen=True, slots=True)
class Patient:
    """A registered patient: the pseudonymous id the gateways use, and what people read."""

    id: str
    display_name: str
    date_of_birth: dt.date | None = None
    conditions: tuple[str, ...] = ()
    care_team: tuple[str, ...] = ()
    family: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gateway:
    """A home gateway, the patients it may send data for, and whether it is revoked."""

    id: str
    home: str
    patients: tuple[str, ...] = ()
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Device:
    """A device bound to a patient, read by a gateway."""

    id: str
    patient: str
    gateway: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayBinding:
    """What the ingest needs to know of one gateway: revoked or not, and the patients bound to it."""

    revoked: bool
    patients: frozenset[str] = field(default_factory=frozenset)


class Registry:
    """The patient registry over one SQLAlchemy engine (the store's)."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock

    # -- patients ----------------------------------------------------------------------------------
    def add_patient(self, patient: Patient) -> Patient:
        """Register ``patient`` (its care team and family are set apart); raises when the id is taken."""
        _check_id("patient", patient.id)
        with self._sessions() as session, session.begin():
            if session.get(PatientRecord, patient.id) is not None:
                raise RegistryError(f"patient {patient.id!r} is already registered", kind="conflict")
            session.add(PatientRecord(id=patient.id, display_name=patient.display_name,
                                      date_of_birth=patient.date_of_birth,
                                      conditions=json.dumps(list(patient.conditions)), created_at=self._clock()))
        return self.patient(patient.id) or patient

    def patient(self, patient_id: str) -> Patient | None:
        """The patient with ``patient_id``, with the usernames of its care team and family; None if unknown."""
        found = self.patients([patient_id])
        return found[0] if found else None

    def patients(self, ids: Iterable[str] | None = None) -> list[Patient]:
        """Registered patients (those of ``ids`` only, when given), ordered by id."""
        with self._sessions() as session:
            statement = select(PatientRecord).order_by(PatientRecord.id)
            wanted = sorted(set(ids)) if ids is not None else None
            if wanted is not None:
                statement = statement.where(PatientRecord.id.in_(wanted))
            records = list(session.scalars(statement))
            team = _usernames(session, CareTeamMember, [r.id for r in records])
            family = _usernames(session, FamilyMember, [r.id for r in records])
            return [Patient(r.id, r.display_name, r.date_of_birth, tuple(json.loads(r.conditions)),
                            tuple(team.get(r.id, ())), tuple(family.get(r.id, ()))) for r in records]

    def add_care_team_member(self, patient_id: str, username: str) -> None:
        """Put ``username`` on ``patient_id``'s care team (their role, doctor or nurse, is their function)."""
        with self._sessions() as session, session.begin():
            self._need_patient(session, patient_id)
            user = _need_user(session, username)
            if user.role == "family":
                raise RegistryError(f"user {username!r} has role family and cannot be on a care team")
            if session.get(CareTeamMember, (patient_id, user.id)) is None:
                session.add(CareTeamMember(patient_id=patient_id, user_id=user.id, function=user.role))

    def remove_care_team_member(self, patient_id: str, username: str) -> None:
        """Take ``username`` off ``patient_id``'s care team."""
        with self._sessions() as session, session.begin():
            user = _need_user(session, username)
            session.execute(delete(CareTeamMember).where(CareTeamMember.patient_id == patient_id,
                                                         CareTeamMember.user_id == user.id))

    def add_family_member(self, patient_id: str, username: str) -> None:
        """Let the family user ``username`` follow ``patient_id``."""
        with self._sessions() as session, session.begin():
            self._need_patient(session, patient_id)
            user = _need_user(session, username)
            if user.role != "family":
                raise RegistryError(f"user {username!r} has role {user.role}, not family")
            if session.get(FamilyMember, (patient_id, user.id)) is None:
                session.add(FamilyMember(patient_id=patient_id, user_id=user.id))

    def remove_family_member(self, patient_id: str, username: str) -> None:
        """Stop ``username`` following ``patient_id``."""
        with self._sessions() as session, session.begin():
            user = _need_user(session, username)
            session.execute(delete(FamilyMember).where(FamilyMember.patient_id == patient_id,
                                                       FamilyMember.user_id == user.id))

    def relations(self, user_id: int) -> dict[str, Relation]:
        """Every patient the user stands in relation to (care team wins over family). Two indexed queries."""
        with self._sessions() as session:
            found = {patient: Relation.FAMILY for patient in session.scalars(
                select(FamilyMember.patient_id).where(FamilyMember.user_id == user_id))}
            found.update({patient: Relation.CARE for patient in session.scalars(
                select(CareTeamMember.patient_id).where(CareTeamMember.user_id == user_id))})
            return found

    # -- gateways and devices ----------------------------------------------------------------------
    def add_gateway(self, gateway: Gateway) -> Gateway:
        """Register a gateway and bind it to its patients (who must be registered)."""
        _check_id("gateway", gateway.id)
        with self._sessions() as session, session.begin():
            if session.get(GatewayRecord, gateway.id) is not None:
                raise RegistryError(f"gateway {gateway.id!r} is already registered", kind="conflict")
            session.add(GatewayRecord(id=gateway.id, home=gateway.home, revoked=False, created_at=self._clock()))
            session.flush()
            for patient_id in sorted(set(gateway.patients)):
                self._need_patient(session, patient_id)
                session.add(GatewayPatient(gateway_id=gateway.id, patient_id=patient_id))
        return self.gateway(gateway.id) or gateway

    def bind_patient(self, gateway_id: str, patient_id: str) -> None:
        """Let ``gateway_id`` send data for ``patient_id``."""
        with self._sessions() as session, session.begin():
            self._need_gateway(session, gateway_id)
            self._need_patient(session, patient_id)
            if session.get(GatewayPatient, (gateway_id, patient_id)) is None:
                session.add(GatewayPatient(gateway_id=gateway_id, patient_id=patient_id))

    def unbind_patient(self, gateway_id: str, patient_id: str) -> None:
        """Stop ``gateway_id`` sending data for ``patient_id``."""
        with self._sessions() as session, session.begin():
            session.execute(delete(GatewayPatient).where(GatewayPatient.gateway_id == gateway_id,
                                                         GatewayPatient.patient_id == patient_id))

    def revoke_gateway(self, gateway_id: str) -> Gateway:
        """Mark the gateway revoked: the ingest refuses its batches from the next cache refresh on."""
        with self._sessions() as session, session.begin():
            record = self._need_gateway(session, gateway_id)
            if not record.revoked:
                record.revoked = True
                record.revoked_at = self._clock()
        return self.gateway(gateway_id) or Gateway(gateway_id, "", revoked=True)

    def gateway(self, gateway_id: str) -> Gateway | None:
        """One gateway with its patients; None when unknown."""
        found = [g for g in self.gateways() if g.id == gateway_id]
        return found[0] if found else None

    def gateways(self) -> list[Gateway]:
        """Every registered gateway, ordered by id."""
        with self._sessions() as session:
            bound: dict[str, list[str]] = {}
            for gateway_id, patient_id in session.execute(
                    select(GatewayPatient.gateway_id, GatewayPatient.patient_id).order_by(GatewayPatient.patient_id)):
                bound.setdefault(gateway_id, []).append(patient_id)
            return [Gateway(r.id, r.home, tuple(bound.get(r.id, ())), r.revoked)
                    for r in session.scalars(select(GatewayRecord).order_by(GatewayRecord.id))]

    def bindings(self, gateway_ids: Iterable[str]) -> dict[str, GatewayBinding]:
        """The bindings of the known gateways among ``gateway_ids`` (unknown ones are absent): one query."""
        wanted = sorted(set(gateway_ids))
        if not wanted:
            return {}
        found: dict[str, tuple[bool, set[str]]] = {}
        with self._sessions() as session:
            rows = session.execute(
                select(GatewayRecord.id, GatewayRecord.revoked, GatewayPatient.patient_id)
                .outerjoin(GatewayPatient, GatewayPatient.gateway_id == GatewayRecord.id)
                .where(GatewayRecord.id.in_(wanted))
            )
            for gateway_id, revoked, patient_id in rows:
                entry = found.setdefault(gateway_id, (bool(revoked), set()))
                if patient_id is not None:
                    entry[1].add(patient_id)
        return {gateway_id: GatewayBinding(revoked, frozenset(patients))
                for gateway_id, (revoked, patients) in found.items()}

    def add_device(self, device: Device) -> Device:
        """Register a device bound to a patient (and optionally the gateway that reads it)."""
        _check_id("device", device.id)
        try:
            with self._sessions() as session, session.begin():
                self._need_patient(session, device.patient)
                if device.gateway is not None:
                    self._need_gateway(session, device.gateway)
                if session.get(DeviceRecord, device.id) is not None:
                    raise RegistryError(f"device {device.id!r} is already registered", kind="conflict")
                session.add(DeviceRecord(id=device.id, patient_id=device.patient, gateway_id=device.gateway,
                                         profile=device.profile))
        except IntegrityError:
            raise RegistryError(f"device {device.id!r} is already registered", kind="conflict") from None
        return device

    def devices(self, patients: Iterable[str] | None = None) -> list[Device]:
        """Registered devices (of ``patients`` only, when given), ordered by id."""
        statement = select(DeviceRecord).order_by(DeviceRecord.id)
        if patients is not None:
            statement = statement.where(DeviceRecord.patient_id.in_(sorted(set(patients))))
        with self._sessions() as session:
            return [Device(r.id, r.patient_id, r.gateway_id, r.profile) for r in session.scalars(statement)]

    @staticmethod
    def _need_patient(session: Session, patient_id: str) -> PatientRecord:
        record = session.get(PatientRecord, patient_id)
        if record is None:
            raise RegistryError(f"no patient {patient_id[:64]!r} is registered", kind="not_found")
        return record

    @staticmethod
    def _need_gateway(session: Session, gateway_id: str) -> GatewayRecord:
        record = session.get(GatewayRecord, gateway_id)
        if record is None:
            raise RegistryError(f"no gateway {gateway_id[:64]!r} is registered", kind="not_found")
        return record


class GatewayBindings:
    """The ingest's view of the registry: one query per micro-batch for the gateways not seen in the last
    ``ttl_s`` seconds (so a revocation takes effect within ``ttl_s``). ``clock`` returns seconds (monotonic)."""

    def __init__(self, registry: Registry, *, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.ttl_s = ttl_s
        self.clock = clock
        self.queries = 0
        self._cache: dict[str, tuple[float, GatewayBinding | None]] = {}

    def lookup(self, gateway_ids: Iterable[str]) -> Mapping[str, GatewayBinding | None]:
        """Each gateway's binding, None for an unknown gateway."""
        now = self.clock()
        wanted = set(gateway_ids)
        stale = {g for g in wanted if g not in self._cache or now - self._cache[g][0] >= self.ttl_s}
        if stale:
            self.queries += 1
            found = self.registry.bindings(stale)
            for gateway_id in stale:
                self._cache[gateway_id] = (now, found.get(gateway_id))
            if len(self._cache) > 100_000:  # bounded: forget what is old
                self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.ttl_s}
        return {g: self._cache[g][1] for g in wanted}


def _check_id(kind: str, value: str) -> None:
    if not is_identifier(value):
        raise RegistryError(f"{kind} id {value[:80]!r} is not a valid identifier (1-64 letters, digits, . _ -)")


def _need_user(session: Session, username: str) -> UserRecord:
    user = session.scalar(select(UserRecord).where(UserRecord.username == username))
    if user is None:
        raise RegistryError(f"no user {username[:64]!r}", kind="not_found")
    return user


def _usernames(session: Session, table: type[CareTeamMember] | type[FamilyMember],
               patients: list[str]) -> dict[str, list[str]]:
    if not patients:
        return {}
    found: dict[str, list[str]] = {}
    rows = session.execute(select(table.patient_id, UserRecord.username)
                           .join(UserRecord, UserRecord.id == table.user_id)
                           .where(table.patient_id.in_(patients)).order_by(UserRecord.username))
    for patient_id, username in rows:
        found.setdefault(patient_id, []).append(username)
    return found
