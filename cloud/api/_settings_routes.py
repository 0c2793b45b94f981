"""A patient's settings: read, change (versioned, optimistic), history, and a preview of the alert burden.

Reading and changing need the care team (:data:`Permission.READ_SETTINGS`,
:data:`Permission.CHANGE_SETTINGS`); family may neither. A change names the version it was made
from (``expected_version``) and is refused with 409 when another change came first; settings that
do not validate (or an override a rule refuses) are refused with 422 naming the field. Who changed
them is the signed-in user. Every request is audited (the audit trail notes the patient and the
action); the history keeps every version with who, when and why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from cloud.auth import ERROR_RESPONSES, ApiError, ErrorBody
from cloud.auth.policy import Permission, Principal, require
from cloud.rules import AlertBurden, PatientSettings, Rule, RuleEngine, alert_burden
from cloud.store import SettingsConflict, SettingsRecord, SettingsStore
from cloud.timeseries import InfluxError, InfluxV1Client, read_samples
from vitals.samples import Sample

__all__ = ["BurdenOut", "PreviewOut", "PreviewRequest", "SettingsChange", "SettingsOut", "settings_router"]

_CONFLICT: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "The settings changed since expected_version"}}
_MAX_DAYS = 90


class SettingsOut(BaseModel):
    """One version of a patient's settings (version 0: none saved, the defaults apply)."""

    patient: str
    version: int
    settings: PatientSettings
    changed_by: str | None
    changed_at: dt.datetime | None
    reason: str


class SettingsChange(BaseModel):
    """A new version of a patient's settings, made from ``expected_version``."""

    settings: PatientSettings
    reason: str = Field(min_length=1, max_length=2000, description="why the settings change (kept in the history)")
    expected_version: int = Field(ge=0, description="the version the change was made from (0: none saved yet)")


class PreviewRequest(BaseModel):
    """Proposed settings to replay the patient's stored readings with."""

    settings: PatientSettings
    days: int = Field(30, ge=1, le=_MAX_DAYS, description="how many days of stored readings to replay")


class BurdenOut(BaseModel):
    """Alerts the rules would have raised: total and per rule."""

    alerts: int
    by_rule: dict[str, int]


class PreviewOut(BaseModel):
    """The alert burden of the current and the proposed settings over the same readings."""

    days: int
    samples: int = Field(description="stored readings replayed")
    current_version: int
    current: BurdenOut
    proposed: BurdenOut


def _out(record: SettingsRecord) -> SettingsOut:
    return SettingsOut(patient=record.patient, version=record.version, settings=record.settings,
                       changed_by=record.changed_by, changed_at=record.changed_at, reason=record.reason)


def _burden(found: AlertBurden) -> BurdenOut:
    return BurdenOut(alerts=found.alerts, by_rule=found.by_rule)


def settings_router(settings_store: SettingsStore, influx: InfluxV1Client, rules: Sequence[Rule], *,
                    clock: Callable[[], dt.datetime],
                    on_saved: Callable[[str, int], None] | None = None) -> APIRouter:
    """Routes under ``/api/v1/patients/{patient}/settings``; ``rules`` are those the running cloud judges with.

    ``on_saved(patient, version)`` is called after each saved change (e.g. to publish the gateway's thresholds).
    """
    router = APIRouter(prefix="/api/v1/patients/{patient}/settings")
    engine = RuleEngine(rules)
    known = {rule.name for rule in rules}

    def check(patient: str, settings: PatientSettings, where: str) -> None:
        unknown = sorted(set(settings.rules) - known)
        if unknown:
            raise ApiError(422, f"{where}.rules.{unknown[0]}: no rule of that name; known: {', '.join(sorted(known))}")
        try:
            engine.rules_for(patient, settings)
        except ValueError as exc:
            raise ApiError(422, f"{where}.rules: {exc}") from None

    @router.get("", response_model=SettingsOut, responses=ERROR_RESPONSES)
    async def read_settings(
        patient: str, _principal: Annotated[Principal, Depends(require(Permission.READ_SETTINGS))],
    ) -> SettingsOut:
        """The patient's settings in force (version 0 and the defaults when none were saved)."""
        return _out(await asyncio.to_thread(settings_store.current, patient))

    @router.put("", response_model=SettingsOut, responses=_CONFLICT)
    async def change_settings(
        patient: str, change: SettingsChange,
        principal: Annotated[Principal, Depends(require(Permission.CHANGE_SETTINGS))],
    ) -> SettingsOut:
        """Save the settings as a new version; 409 when ``expected_version`` is not the version in force."""
        check(patient, change.settings, "body.settings")
        try:
            record = await asyncio.to_thread(
                settings_store.save, patient, change.settings, expected_version=change.expected_version,
                changed_by=principal.username, reason=change.reason, at=clock())
        except SettingsConflict as exc:
            raise ApiError(409, str(exc)) from None
        if on_saved is not None:
            on_saved(patient, record.version)
        return _out(record)

    @router.get("/history", response_model=list[SettingsOut], responses=ERROR_RESPONSES)
    async def settings_history(
        patient: str, _principal: Annotated[Principal, Depends(require(Permission.READ_SETTINGS))],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[SettingsOut]:
        """Every saved version, newest first."""
        return [_out(record) for record in await asyncio.to_thread(settings_store.history, patient, limit)]

    @router.post("/preview", response_model=PreviewOut, responses={
        **ERROR_RESPONSES, 503: {"model": ErrorBody, "description": "The time-series store is unavailable"}})
    async def preview_settings(
        patient: str, request: PreviewRequest,
        _principal: Annotated[Principal, Depends(require(Permission.READ_SETTINGS))],
    ) -> PreviewOut:
        """Replay the patient's stored readings of the last ``days`` through the rules with the current and
        the proposed settings; count the alerts each would have raised."""
        check(patient, request.settings, "body.settings")
        current = await asyncio.to_thread(settings_store.current, patient)
        current_settings = current.settings if current.version else None
        metrics = sorted({metric for settings in (current_settings, request.settings)
                          for rule in engine.rules_for(patient, settings or PatientSettings())
                          for metric in rule.metrics})
        end = clock()
        end_ns = int(end.timestamp() * 1e9)
        start_ns = end_ns - request.days * 86_400 * 1_000_000_000
        samples: list[Sample] = []
        try:
            for metric in metrics:
                samples.extend(await read_samples(influx, patient, metric, start_ns, end_ns))
        except InfluxError as exc:
            raise ApiError(503, f"time-series store unavailable: {exc}") from None
        now_burden = await asyncio.to_thread(alert_burden, engine, patient, samples, current_settings)
        new_burden = await asyncio.to_thread(alert_burden, engine, patient, samples, request.settings)
        return PreviewOut(days=request.days, samples=len(samples), current_version=current.version,
                          current=_burden(now_burden), proposed=_burden(new_burden))

    return router
