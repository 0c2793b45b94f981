"""Tables of per-patient settings (every version kept) and of each gateway's threshold message."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.store._models import Base
from cloud.store._types import UtcDateTime

__all__ = ["GatewayConfigRecord", "PatientSettingsCurrent", "PatientSettingsVersion"]


class PatientSettingsVersion(Base):
    """One version of a patient's settings (JSON), who saved it, when and why; never changed once written."""

    __tablename__ = "patient_settings"

    patient: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    settings: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)


class PatientSettingsCurrent(Base):
    """The version in force per patient: one small row, so a worker can check for news in one cheap query."""

    __tablename__ = "patient_settings_current"

    patient: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class GatewayConfigRecord(Base):
    """The threshold message a gateway should hold (``revision`` only grows) and the revision last published."""

    __tablename__ = "gateway_configs"

    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    published_revision: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    published_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
