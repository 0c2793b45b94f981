"""Tables of gateway and device health: what each gateway and device last said, and when."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.store._models import Base

__all__ = ["DeviceHealth", "GatewayHealth"]


class GatewayHealth(Base):
    """A gateway's last known state.

    ``state`` is what its newest status said (``online`` or ``offline``); ``status_time`` and
    ``status_rank`` order status messages that reach different ingest workers out of order (a last
    will carries the time its connection began, so at equal times ``offline`` wins). ``last_seen``
    is the cloud's time of the newest message of any kind from the gateway; a gateway ``online``
    but silent longer than the configured time is reported ``unknown``.
    """

    __tablename__ = "gateway_health"

    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    state_since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status_time: Mapped[float] = mapped_column(Float, default=0.0)
    status_rank: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    epoch: Mapped[str] = mapped_column(String(64), default="")
    backlog: Mapped[int | None] = mapped_column(Integer, nullable=True)
    oldest_unsent_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    dropped_values: Mapped[int] = mapped_column(Integer, default=0)
    drop_events: Mapped[int] = mapped_column(Integer, default=0)


class DeviceHealth(Base):
    """A device's last known state: its newest reading, battery and link, as its gateway reported them."""

    __tablename__ = "device_health"

    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    last_reading: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    battery: Mapped[int | None] = mapped_column(Integer, nullable=True)
    link: Mapped[str] = mapped_column(String(16), default="unknown")
    link_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
