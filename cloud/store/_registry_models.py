"""Tables of the patient registry and of security: who the patients are, who may see them, which gateway
speaks for whom, the users who sign in, their refresh tokens and failed logins, and the audit trail."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.store._models import Base

__all__ = [
    "AlertSeen",
    "AuditEventRecord",
    "AuditHead",
    "CareTeamMember",
    "DeviceRecord",
    "FamilyMember",
    "GatewayPatient",
    "GatewayRecord",
    "LoginThrottle",
    "PatientRecord",
    "RefreshTokenRecord",
    "UserRecord",
]


class UserRecord(Base):
    """A person who signs in: ``role`` is admin, doctor, nurse or family. ``token_version`` goes up on a
    password change or a disable, which voids every token issued before."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PatientRecord(Base):
    """A patient under the pseudonymous id the gateways use in batches; the name is for people, not wires."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128))
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    conditions: Mapped[str] = mapped_column(Text, default="[]")  # a JSON list of strings
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CareTeamMember(Base):
    """A user (doctor or nurse, or an admin who also treats) on a patient's care team."""

    __tablename__ = "care_team"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    function: Mapped[str] = mapped_column(String(16))


class FamilyMember(Base):
    """A family user who follows one patient."""

    __tablename__ = "family_members"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class GatewayRecord(Base):
    """A home gateway; a revoked one is refused by the ingest."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    home: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class GatewayPatient(Base):
    """A patient whose data a gateway may send."""

    __tablename__ = "gateway_patients"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)


class DeviceRecord(Base):
    """A device bound to a patient (and the gateway that reads it, where known)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    gateway_id: Mapped[str | None] = mapped_column(ForeignKey("gateways.id", ondelete="SET NULL"), nullable=True)
    profile: Mapped[str | None] = mapped_column(String(128), nullable=True)


class RefreshTokenRecord(Base):
    """A refresh token, kept only as its SHA-256. Each use replaces it by a new one of the same ``family``;
    a second use of a replaced token revokes the whole family (it was stolen or replayed)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginThrottle(Base):
    """Failed logins per key (``user:NAME`` or ``addr:IP``) in the current window, and a lock's end."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AlertSeen(Base):
    """A user (typically family) has seen an alert; apart from the clinical acknowledgement."""

    __tablename__ = "alert_seen"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditEventRecord(Base):
    """One audited request, append-only. ``hash`` = SHA-256 of ``prev_hash`` and this row's content."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    client: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's single bookkeeping row: the last id and hash written, and the anchor left by pruning
    (the id and hash of the newest row removed; the first kept row must chain from it)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_id: Mapped[int] = mapped_column(BigInteger)
    anchor_hash: Mapped[str] = mapped_column(String(64))
