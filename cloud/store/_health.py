"""Gateway and device health rows change here only, inside the ingest's transaction.

Three sources feed them: status messages (online, goodbye, last will), events (device status with
battery, link lost or attached, spool drops, heartbeats with the spool backlog), and the data
batches themselves (a batch proves its gateway and device alive and dates the device's newest
reading).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cloud.store._health_models import DeviceHealth, GatewayHealth
from vitals.health import GatewayEvent, GatewayStatus

__all__ = ["DeviceSeen", "HealthUpdate", "apply_health", "gateway_state"]

_STATE_RANK = {"online": 0, "offline": 1}  # at equal times a last will follows the birth it was made with
_LINK_KINDS = {"attached": "connected", "lost": "lost", "unreachable": "unreachable"}
_DROP_KINDS = ("spool_full", "spool_drop")


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """A stored batch: its gateway and device are alive, and its newest sample is ``last_reading``."""

    gateway: str
    device: str
    patient: str
    last_reading: dt.datetime


@dataclass
class HealthUpdate:
    """Everything a micro-batch says about gateway and device health."""

    statuses: Sequence[GatewayStatus] = ()
    events: Sequence[GatewayEvent] = ()
    devices: Sequence[DeviceSeen] = ()

    def __bool__(self) -> bool:
        return bool(self.statuses or self.events or self.devices)


def apply_health(session: Session, update: HealthUpdate, at: dt.datetime) -> None:
    """Record ``update`` (received at ``at``) in the open transaction of ``session``."""
    if update.devices:
        _seen(session, update.devices, at)
    for status in sorted(update.statuses, key=_order):
        _status(session, status, at)
    for event in sorted(update.events, key=lambda e: e.time):
        _event(session, event, at)


def _insert(session: Session, model: type[Any]) -> Any:
    table = model.__table__
    return (postgresql_insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite_insert(table))


def _gateway_row(gateway: str, at: dt.datetime) -> dict[str, Any]:
    return {"gateway": gateway, "state": "online", "state_since": at, "status_time": 0.0, "status_rank": 0,
            "last_seen": at, "version": "", "epoch": "", "backlog": None, "oldest_unsent_s": None,
            "dropped_values": 0, "drop_events": 0}


def _seen(session: Session, devices: Iterable[DeviceSeen], at: dt.datetime) -> None:
    newest: dict[tuple[str, str], DeviceSeen] = {}
    for seen in devices:
        key = (seen.gateway, seen.device)
        if key not in newest or seen.last_reading > newest[key].last_reading:
            newest[key] = seen
    gateways = sorted({gateway for gateway, _device in newest})
    statement = _insert(session, GatewayHealth)
    # Data proves the gateway alive; its state changes only with its status messages.
    session.execute(statement.on_conflict_do_update(index_elements=["gateway"],
                                                    set_={"last_seen": statement.excluded.last_seen}),
                    [_gateway_row(gateway, at) for gateway in gateways])
    statement = _insert(session, DeviceHealth)
    rows = [{"gateway": s.gateway, "device": s.device, "patient": s.patient, "last_reading": s.last_reading,
             "battery": None, "link": "connected", "link_since": at, "last_reason": "", "updated_at": at}
            for _key, s in sorted(newest.items())]
    session.execute(statement.on_conflict_do_update(
        index_elements=["gateway", "device"],
        set_={"patient": statement.excluded.patient, "last_reading": statement.excluded.last_reading,
              "updated_at": statement.excluded.updated_at},
        # a replayed old batch must not move the newest reading back
        where=(DeviceHealth.__table__.c.last_reading.is_(None)
               | (DeviceHealth.__table__.c.last_reading < statement.excluded.last_reading)),
    ), rows)


def _gateway(session: Session, gateway: str, at: dt.datetime) -> GatewayHealth:
    # Locked for the transaction, so two workers' messages for one gateway apply one after the other.
    record = session.scalars(select(GatewayHealth).where(GatewayHealth.gateway == gateway).with_for_update()).first()
    if record is None:
        record = GatewayHealth(**_gateway_row(gateway, at))
        session.add(record)
    return record


def _status(session: Session, status: GatewayStatus, at: dt.datetime) -> None:
    record = _gateway(session, status.gateway, at)
    record.last_seen = max(_aware(record.last_seen), at)
    connection, rank = _order(status)
    if (connection, rank) < (record.status_time, record.status_rank):
        return  # an older status that reached us late
    if record.state != status.state or record.status_time == 0.0:
        record.state_since = at
    record.state = status.state
    record.status_time, record.status_rank = connection, rank
    if status.version:
        record.version = status.version
    if status.epoch:
        record.epoch = status.epoch
    if status.backlog is not None:
        record.backlog = status.backlog


def _event(session: Session, event: GatewayEvent, at: dt.datetime) -> None:
    record = _gateway(session, event.gateway, at)
    record.last_seen = max(_aware(record.last_seen), at)
    detail = event.detail
    if event.kind == "heartbeat":
        backlog = detail.get("backlog")
        if isinstance(backlog, int) and not isinstance(backlog, bool) and backlog >= 0:
            record.backlog = backlog
        oldest = detail.get("oldest_unsent_s")
        record.oldest_unsent_s = float(oldest) if isinstance(oldest, int | float) and oldest >= 0 else None
    elif event.kind in _DROP_KINDS:
        dropped = detail.get("dropped")
        record.drop_events += 1
        if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped > 0:
            record.dropped_values += dropped
    if event.device is None:
        return
    device = session.get(DeviceHealth, (event.gateway, event.device), with_for_update=True)
    if device is None:
        device = DeviceHealth(gateway=event.gateway, device=event.device, patient=event.patient, link="unknown",
                              last_reason="", updated_at=at)
        session.add(device)
    if event.patient is not None:
        device.patient = event.patient
    device.updated_at = at
    battery = detail.get("percent") if event.kind == "battery" else detail.get("battery")
    if isinstance(battery, int | float) and not isinstance(battery, bool) and 0 <= battery <= 100:
        device.battery = round(battery)
    link = _LINK_KINDS.get(event.kind)
    if link is not None:
        if device.link != link:
            device.link_since = at
        device.link = link
        reason = detail.get("reason")
        device.last_reason = str(reason)[:300] if reason is not None else ""


def _order(status: GatewayStatus) -> tuple[float, int]:
    # Statuses of one connection share its start time; its will is made before its birth.
    return (status.time if status.connection is None else status.connection), _STATE_RANK[status.state]


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def gateway_state(record: GatewayHealth, now: dt.datetime, silent_s: float) -> str:
    """``online``, ``offline``, or ``unknown`` for an online gateway silent longer than ``silent_s``.

    A gateway whose connection died without the broker noticing (its last will not yet sent, or a
    broker restart that lost it) says nothing at all; silence past the limit is then all we know.
    """
    if record.state == "online" and (now - _aware(record.last_seen)).total_seconds() > silent_s:
        return "unknown"
    return record.state
