"""Per-patient settings, versioned: every change is a new version (who, when, why); the history is kept.

Saving is optimistic: the caller names the version it read (``expected_version``; 0 when the patient
has none yet) and the save fails with :class:`SettingsConflict` when another change came first, so
two clinicians never overwrite each other unknowingly. ``patient_settings_current`` holds the
version in force per patient: the ingest compares it per micro-batch (one small query) to notice a
change saved by any process.

The gateways' threshold messages live here too (``gateway_configs``): the message each gateway
should hold, its revision (it only grows), and the revision last published (see
:mod:`cloud.gatewayconfig`).

Every method is synchronous; async callers run them in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.rules import PatientSettings
from cloud.store._registry_models import GatewayPatient, GatewayRecord
from cloud.store._settings_models import GatewayConfigRecord, PatientSettingsCurrent, PatientSettingsVersion

__all__ = ["SettingsConflict", "SettingsRecord", "SettingsStore"]

_IN_CHUNK = 400


class SettingsConflict(Exception):
    """A save that named a version other than the one in force (``current``)."""

    def __init__(self, patient: str, expected: int, current: int) -> None:
        super().__init__(f"patient {patient}'s settings are at version {current}, not {expected}: "
                         "read them again and reapply the change")
        self.patient, self.expected, self.current = patient, expected, current


@dataclass(frozen=True, slots=True)
class SettingsRecord:
    """One version of a patient's settings; version 0 (no author) stands for the defaults when none is saved."""

    patient: str
    version: int
    settings: PatientSettings
    changed_by: str | None = None
    changed_at: dt.datetime | None = None
    reason: str = ""


def _record(row: PatientSettingsVersion) -> SettingsRecord:
    return SettingsRecord(row.patient, row.version, PatientSettings.model_validate(json.loads(row.settings)),
                          row.changed_by, row.changed_at, row.reason)


class SettingsStore:
    """Patients' settings and the gateways' threshold messages over one SQLAlchemy engine (the store's)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- settings --------------------------------------------------------------------------------------
    def current(self, patient: str) -> SettingsRecord:
        """The version in force (version 0 with default settings when none was ever saved)."""
        with self._sessions() as session:
            row = session.scalar(
                select(PatientSettingsVersion).join(
                    PatientSettingsCurrent,
                    (PatientSettingsCurrent.patient == PatientSettingsVersion.patient)
                    & (PatientSettingsCurrent.version == PatientSettingsVersion.version))
                .where(PatientSettingsVersion.patient == patient))
        return _record(row) if row is not None else SettingsRecord(patient, 0, PatientSettings())

    def history(self, patient: str, limit: int = 100) -> list[SettingsRecord]:
        """Every saved version of ``patient``'s settings, newest first (at most ``limit``)."""
        with self._sessions() as session:
            rows = session.scalars(select(PatientSettingsVersion).where(PatientSettingsVersion.patient == patient)
                                   .order_by(PatientSettingsVersion.version.desc()).limit(limit))
            return [_record(row) for row in rows]

    def save(self, patient: str, settings: PatientSettings, *, expected_version: int, changed_by: str,
             reason: str, at: dt.datetime) -> SettingsRecord:
        """Save ``settings`` as the next version; :class:`SettingsConflict` when ``expected_version`` is stale.

        The stored settings carry their version (``settings.version`` is set to it).
        """
        version = expected_version + 1
        stored = settings.model_copy(update={"version": str(version)})
        text = json.dumps(stored.model_dump(mode="json"), sort_keys=True)
        try:
            with self._sessions() as session, session.begin():
                if expected_version == 0:
                    session.execute(insert(PatientSettingsCurrent).values(patient=patient, version=1, changed_at=at))
                else:
                    # Conditional: only the writer that read the version in force moves it on.
                    moved = session.execute(
                        update(PatientSettingsCurrent)
                        .where(PatientSettingsCurrent.patient == patient,
                               PatientSettingsCurrent.version == expected_version)
                        .values(version=version, changed_at=at))
                    if getattr(moved, "rowcount", 0) != 1:
                        raise SettingsConflict(patient, expected_version, self._version(session, patient))
                session.add(PatientSettingsVersion(patient=patient, version=version, settings=text,
                                                   changed_by=changed_by[:128], changed_at=at, reason=reason))
        except IntegrityError:
            with self._sessions() as session:
                current = self._version(session, patient)
            raise SettingsConflict(patient, expected_version, current) from None
        return SettingsRecord(patient, version, stored, changed_by[:128], at, reason)

    @staticmethod
    def _version(session: Session, patient: str) -> int:
        found = session.scalar(select(PatientSettingsCurrent.version)
                               .where(PatientSettingsCurrent.patient == patient))
        return int(found or 0)

    def versions(self, patients: Iterable[str]) -> dict[str, int]:
        """The version in force of each of ``patients`` that has saved settings (one small query per 400)."""
        wanted = sorted(set(patients))
        found: dict[str, int] = {}
        with self._sessions() as session:
            for start in range(0, len(wanted), _IN_CHUNK):
                rows = session.execute(select(PatientSettingsCurrent.patient, PatientSettingsCurrent.version)
                                       .where(PatientSettingsCurrent.patient.in_(wanted[start:start + _IN_CHUNK])))
                found.update({patient: int(version) for patient, version in rows})
        return found

    def settings_of(self, patients: Iterable[str] | None = None) -> dict[str, SettingsRecord]:
        """The version in force of ``patients`` (None: of every patient) that have saved settings."""
        statement = select(PatientSettingsVersion).join(
            PatientSettingsCurrent,
            (PatientSettingsCurrent.patient == PatientSettingsVersion.patient)
            & (PatientSettingsCurrent.version == PatientSettingsVersion.version))
        found: dict[str, SettingsRecord] = {}
        with self._sessions() as session:
            if patients is None:
                found.update({row.patient: _record(row) for row in session.scalars(statement)})
                return found
            wanted = sorted(set(patients))
            for start in range(0, len(wanted), _IN_CHUNK):
                rows = session.scalars(statement.where(
                    PatientSettingsVersion.patient.in_(wanted[start:start + _IN_CHUNK])))
                found.update({row.patient: _record(row) for row in rows})
        return found

    # -- gateways' threshold messages --------------------------------------------------------------------
    def gateway_patients(self) -> dict[str, list[str]]:
        """Every registered gateway that is not revoked, with the patients bound to it (sorted)."""
        with self._sessions() as session:
            gateways: dict[str, list[str]] = {gateway: [] for gateway in session.scalars(
                select(GatewayRecord.id).where(GatewayRecord.revoked.is_(False)))}
            for gateway, patient in session.execute(select(GatewayPatient.gateway_id, GatewayPatient.patient_id)):
                if gateway in gateways:
                    gateways[gateway].append(patient)
        return {gateway: sorted(patients) for gateway, patients in sorted(gateways.items())}

    def gateway_config(self, gateway: str) -> GatewayConfigRecord | None:
        """The threshold message ``gateway`` should hold, if one was ever staged."""
        with self._sessions() as session:
            return session.get(GatewayConfigRecord, gateway)

    def stage_gateway_config(self, gateway: str, digest: str, build: Callable[[int], bytes],
                             at: dt.datetime) -> GatewayConfigRecord | None:
        """Make ``build(revision)`` the message ``gateway`` should hold, unless it already holds ``digest``.

        The revision is one more than the last; returns the new row (None: nothing changed, or another
        process staged it at the same moment). ``build`` may raise; then nothing is written.
        """
        with self._sessions() as session, session.begin():
            row = session.get(GatewayConfigRecord, gateway)
            if row is not None and row.digest == digest:
                return None
            revision = 1 if row is None else row.revision + 1
            payload = build(revision)
            if row is None:
                try:
                    with session.begin_nested():
                        session.execute(insert(GatewayConfigRecord).values(
                            gateway=gateway, revision=revision, digest=digest, payload=payload, changed_at=at))
                except IntegrityError:
                    return None
            else:
                moved = session.execute(update(GatewayConfigRecord).where(
                    GatewayConfigRecord.gateway == gateway, GatewayConfigRecord.revision == row.revision,
                ).values(revision=revision, digest=digest, payload=payload, changed_at=at)
                    .execution_options(synchronize_session=False))
                if getattr(moved, "rowcount", 0) != 1:
                    return None
        return GatewayConfigRecord(gateway=gateway, revision=revision, digest=digest, payload=payload,
                                   changed_at=at, published_revision=None if row is None else row.published_revision)

    def unpublished_gateway_configs(self) -> list[GatewayConfigRecord]:
        """Staged messages not yet confirmed published at their current revision."""
        with self._sessions() as session:
            rows = session.scalars(select(GatewayConfigRecord).where(
                GatewayConfigRecord.published_revision.is_(None)
                | (GatewayConfigRecord.published_revision < GatewayConfigRecord.revision))
                .order_by(GatewayConfigRecord.gateway))
            return list(rows)

    def all_gateway_configs(self) -> list[GatewayConfigRecord]:
        """Every staged message, by gateway."""
        with self._sessions() as session:
            return list(session.scalars(select(GatewayConfigRecord).order_by(GatewayConfigRecord.gateway)))

    def mark_gateway_config_published(self, gateway: str, revision: int, at: dt.datetime) -> None:
        """Record that the broker took ``revision`` of ``gateway``'s message (a newer mark is never undone)."""
        with self._sessions() as session, session.begin():
            session.execute(update(GatewayConfigRecord).where(
                GatewayConfigRecord.gateway == gateway,
                GatewayConfigRecord.published_revision.is_(None)
                | (GatewayConfigRecord.published_revision < revision),
            ).values(published_revision=revision, published_at=at))
