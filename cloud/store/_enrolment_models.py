"""The table of gateway enrolment codes: one row per code issued, the code itself never stored."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.store._models import Base

__all__ = ["EnrolmentCodeRecord"]


class EnrolmentCodeRecord(Base):
    """A one-time enrolment code for a gateway, kept only as a slow hash (``code_hash``, hex) of its normal
    form. ``patients`` (a JSON list) are those bound to the gateway when the code was made; ``used_at`` is
    set once, when a gateway spends it (from ``used_from``)."""

    __tablename__ = "enrolment_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), index=True)
    patients: Mapped[str] = mapped_column(Text, default="[]")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    used_from: Mapped[str | None] = mapped_column(String(64), nullable=True)
