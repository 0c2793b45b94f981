"""`/api/v1/gateways`: each gateway's state (online, offline since, unknown after silence) and its devices.

Under the policy (:mod:`cloud.auth.policy`, ``gateways.read``): an admin reads every gateway; a member of a
care team reads the gateways that team's patients are bound to in the registry; anyone else reads none
(a gateway the caller may not read is answered 404, like one never heard from).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from cloud.auth import ERROR_RESPONSES, ApiError
from cloud.auth.policy import Permission, Principal, note_patients, require
from cloud.registry import Registry
from cloud.store import DeviceHealth, GatewayHealth, Store, gateway_state
from vitals.samples import IDENTIFIER_PATTERN

__all__ = ["DeviceOut", "GatewayOut", "gateway_router"]


class DeviceOut(BaseModel):
    """What is known of one device: its newest reading, battery and Bluetooth or serial link."""

    device: str
    patient: str | None
    last_reading: dt.datetime | None
    reading_age_s: float | None
    battery_percent: int | None
    link: str
    link_since: dt.datetime | None
    last_reason: str


class GatewayOut(BaseModel):
    """What is known of one gateway. ``state`` is ``unknown`` when it says it is online but has been
    silent longer than the configured time."""

    gateway: str
    state: Literal["online", "offline", "unknown"]
    reported_state: str
    since: dt.datetime
    last_seen: dt.datetime
    silent_s: float
    version: str
    spool_epoch: str
    spool_backlog: int | None
    oldest_unsent_s: float | None
    dropped_values: int
    drop_events: int
    devices: list[DeviceOut]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _device(record: DeviceHealth, now: dt.datetime) -> DeviceOut:
    last = _utc(record.last_reading)
    return DeviceOut(device=record.device, patient=record.patient, last_reading=last,
                     reading_age_s=None if last is None else round((now - last).total_seconds(), 1),
                     battery_percent=record.battery, link=record.link, link_since=_utc(record.link_since),
                     last_reason=record.last_reason)


def _gateway(record: GatewayHealth, devices: list[DeviceHealth], now: dt.datetime, silent_s: float) -> GatewayOut:
    last_seen = _utc(record.last_seen)
    since = _utc(record.state_since)
    assert last_seen is not None and since is not None
    state = gateway_state(record, now, silent_s)
    return GatewayOut(
        gateway=record.gateway, state=state, reported_state=record.state,
        since=last_seen if state == "unknown" else since, last_seen=last_seen,
        silent_s=round((now - last_seen).total_seconds(), 1), version=record.version, spool_epoch=record.epoch,
        spool_backlog=record.backlog, oldest_unsent_s=record.oldest_unsent_s, dropped_values=record.dropped_values,
        drop_events=record.drop_events, devices=[_device(device, now) for device in devices],
    )


def _visible(principal: Principal, registry: Registry, gateways: list[str]) -> tuple[set[str], set[str]]:
    """Which of ``gateways`` the caller may read, and the patients that makes them visible through."""
    if principal.may(Permission.READ_GATEWAYS):
        return set(gateways), set()
    mine = principal.patients(Permission.READ_GATEWAYS)
    bindings = registry.bindings(gateways)
    visible: set[str] = set()
    through: set[str] = set()
    for gateway, binding in bindings.items():
        shared = mine & set(binding.patients)
        if shared:
            visible.add(gateway)
            through |= shared
    return visible, through


def gateway_router(store: Store, clock: Callable[[], dt.datetime], silent_s: float) -> APIRouter:
    """Routes that show gateway and device health from ``store``; ``silent_s`` makes a gateway ``unknown``."""
    router = APIRouter(prefix="/api/v1/gateways", tags=["gateways"])
    registry = Registry(store.engine)

    @router.get("", response_model=list[GatewayOut], responses=ERROR_RESPONSES)
    async def list_gateways(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_GATEWAYS))],
        state: Literal["online", "offline", "unknown"] | None = None,
    ) -> list[GatewayOut]:
        """Every gateway the cloud has heard from that the caller may read, with its devices; optionally
        only those in ``state``."""
        records, devices = await asyncio.gather(asyncio.to_thread(store.gateway_health),
                                                asyncio.to_thread(store.device_health))
        visible, through = await asyncio.to_thread(_visible, principal, registry,
                                                   [record.gateway for record in records])
        note_patients(request, sorted(through))
        by_gateway: dict[str, list[DeviceHealth]] = {}
        for device in devices:
            by_gateway.setdefault(device.gateway, []).append(device)
        now = clock()
        out = [_gateway(record, by_gateway.get(record.gateway, []), now, silent_s) for record in records
               if record.gateway in visible]
        return [gateway for gateway in out if state is None or gateway.state == state]

    @router.get("/{gateway}", response_model=GatewayOut, responses=ERROR_RESPONSES)
    async def get_gateway(
        request: Request,
        gateway: Annotated[str, Path(pattern=f"^{IDENTIFIER_PATTERN.pattern}$")],
        principal: Annotated[Principal, Depends(require(Permission.READ_GATEWAYS))],
    ) -> GatewayOut:
        """One gateway's state and its devices."""
        records = await asyncio.to_thread(store.gateway_health, gateway)
        visible, through = await asyncio.to_thread(_visible, principal, registry, [gateway])
        note_patients(request, sorted(through))
        if not records or gateway not in visible:
            raise ApiError(404, "not found")
        devices = await asyncio.to_thread(store.device_health, gateway)
        return _gateway(records[0], devices, clock(), silent_s)

    return router
