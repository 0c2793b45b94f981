"""FastAPI application factory; everything it needs is handed in, so tests can drive it."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel
from sqlalchemy.orm import Session

from cloud.api._alerts import alerts_router
from cloud.api._auth_routes import auth_router
from cloud.api._enrolment_routes import enrolment_router
from cloud.api._gateways import gateway_router
from cloud.api._middleware import SecureHeaders, install_audit
from cloud.api._registry_routes import registry_router
from cloud.api._settings_routes import settings_router
from cloud.api._views import ViewOptions, views_router
from cloud.audit import AuditLog
from cloud.auth import ERROR_RESPONSES, ApiError, Identity, TokenSigner, install_error_handlers
from cloud.auth.policy import (
    Permission,
    Principal,
    SecurityContext,
    check_patient,
    check_routes,
    require,
)
from cloud.enrolment import Enrolment, EnrolmentCodes
from cloud.fhir import fhir_router, install_fhir_errors
from cloud.ingest import IngestStats
from cloud.registry import Registry
from cloud.rules import Rule, build_rules
from cloud.store import AlertRecord, SettingsStore, Store
from cloud.store._registry_models import AlertSeen
from cloud.timeseries import InfluxError, InfluxV1Client, measurement_of
from cloud.web import install_web
from vitals.catalogue import CATALOGUE

__all__ = ["HealthCheck", "create_app", "create_ops_app", "default_security"]

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
"""Returns ``(ready, details)`` for the process's own tasks (the ingest's broker link, stalls)."""

_MAX_POINTS = 100_000
_MAX_ID = 2**63 - 1  # the largest id the databases store


class VitalPoint(BaseModel):
    """One stored value."""

    time: dt.datetime
    time_ns: int
    value: float
    quality: int


class VitalsResponse(BaseModel):
    """A patient's values of one metric over a time range."""

    patient: str
    metric: str
    unit: str
    start: dt.datetime
    end: dt.datetime
    points: list[VitalPoint]
    truncated: bool


class SeenOut(BaseModel):
    """An alert marked seen by the caller."""

    alert: int
    seen_by: str
    seen_at: dt.datetime


def _from_ns(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1e9, dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _add_ops_routes(app: FastAPI, health: HealthCheck | None, registry: CollectorRegistry | None,
                    influx: InfluxV1Client | None, store: Store | None) -> None:
    """``/health`` (and ``/api/v1/health``): 200 when ready, 503 otherwise; ``/metrics`` for Prometheus."""

    async def report() -> JSONResponse:
        ready, details = health() if health is not None else (True, {})
        if influx is not None:
            details["influxdb"] = await influx.ping()
            ready = ready and details["influxdb"]
        if store is not None:
            try:
                await asyncio.to_thread(store.ping)
                details["database"] = True
            except Exception:
                details["database"] = False
                ready = False
        status = "ok" if ready else "degraded"
        return JSONResponse({"status": status, **details}, status_code=200 if ready else 503)

    app.add_api_route("/health", report, methods=["GET"], summary="Readiness: stores reachable, ingest not stalled")
    app.add_api_route("/api/v1/health", report, methods=["GET"], summary="Same as /health")

    if registry is not None:
        async def metrics() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

        app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")


def create_ops_app(health: HealthCheck, registry: CollectorRegistry) -> FastAPI:
    """The HTTP surface of a process that runs only the ingest: ``/health`` and ``/metrics``."""
    app = FastAPI(title="VitalBridge ingest", version="1", docs_url=None, openapi_url=None)
    _add_ops_routes(app, health, registry, None, None)
    return app


def default_security(store: Store, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                     secret: bytes | None = None, token_ttl: dt.timedelta = dt.timedelta(minutes=15),
                     refresh_ttl: dt.timedelta = dt.timedelta(days=14),
                     hasher: PasswordHasher | None = None) -> SecurityContext:
    """Identity, registry and audit over ``store``'s database; tokens signed with ``secret`` (a random one
    when None: then tokens are good only for this process's lifetime)."""
    identity = Identity(store.engine, hasher=hasher, refresh_ttl=refresh_ttl)
    return SecurityContext(identity=identity, registry=Registry(store.engine, clock),
                           audit=AuditLog(store.engine), signer=TokenSigner(secret or secrets.token_bytes(32),
                                                                            ttl=token_ttl), clock=clock)


def _load_alert(store: Store, alert_id: int) -> AlertRecord | None:
    with Session(store.engine) as session:
        return session.get(AlertRecord, alert_id)


def _mark_seen(store: Store, alert_id: int, user_id: int, at: dt.datetime) -> dt.datetime:
    with Session(store.engine) as session, session.begin():
        seen = session.get(AlertSeen, (alert_id, user_id))
        if seen is None:
            seen = AlertSeen(alert_id=alert_id, user_id=user_id, at=at)
            session.add(seen)
        return _aware(seen.at)


def create_app(
    store: Store,
    influx: InfluxV1Client,
    *,
    health: HealthCheck | None = None,
    stats: Callable[[], IngestStats] | None = None,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    security: SecurityContext | None = None,
    hsts: bool = False,
    cors_origins: Sequence[str] = (),
    gateway_silent_s: float = 900.0,
    enrolment: Enrolment | None = None,
    rules: Sequence[Rule] | None = None,
    on_settings_saved: Callable[[str, int], None] | None = None,
) -> FastAPI:
    """Build the API over ``store`` and ``influx``; ``stats`` reports the live ingest counters.

    ``gateway_silent_s``: a gateway that says it is online but has sent nothing for this long is
    shown as ``unknown``. ``rules`` (default: the default rule set) check and preview patients' settings;
    ``on_settings_saved(patient, version)`` hears of every saved change.

    ``/fhir`` serves the same data as FHIR R4 (:mod:`cloud.fhir`), under the same policy and audit trail.
    Every route under ``/api/v1`` and ``/fhir`` (but health and ``/fhir/metadata``) needs a token and a
    permission (:mod:`cloud.auth.policy`) and is audited; ``hsts`` when clients reach it over TLS;
    ``cors_origins`` may call it from browsers (none by default). ``enrolment`` issues and takes gateway
    enrolment codes (default: codes over ``store``, valid 24 h, and no broker address, so gateways cannot
    enrol until one is given).
    """
    # The docs page is the web app's (cloud.web): its assets come from the local npm packages, never a CDN.
    app = FastAPI(title="VitalBridge", version="1", docs_url=None, openapi_url="/api/openapi.json",
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.state.security = context = security or default_security(store, clock)
    app.state.enrolment = enrolment or Enrolment(EnrolmentCodes(store.engine), broker_url=None)
    install_error_handlers(app)
    install_fhir_errors(app)
    install_audit(app, context.audit, context.clock)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecureHeaders, hsts=hsts)
    _add_ops_routes(app, health, registry, influx, store)
    app.include_router(auth_router)
    app.include_router(registry_router)

    @app.get("/api/v1/patients/{patient}/vitals", response_model=VitalsResponse, responses=ERROR_RESPONSES)
    async def patient_vitals(
        patient: str,
        _principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        metric: Annotated[str, Query(description="catalogue metric name, e.g. spo2")],
        start: Annotated[dt.datetime | None, Query(description="ISO 8601; default end - 24 h")] = None,
        end: Annotated[dt.datetime | None, Query(description="ISO 8601; default now")] = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_POINTS)] = 10_000,
    ) -> VitalsResponse:
        """A patient's values of one metric between ``start`` and ``end`` (inclusive), oldest first."""
        if metric not in CATALOGUE:
            raise ApiError(422, f"unknown metric {metric[:80]!r}; known: {', '.join(sorted(CATALOGUE))}")
        end_at = _aware(end) if end is not None else clock()
        start_at = _aware(start) if start is not None else end_at - dt.timedelta(hours=24)
        if start_at > end_at:
            raise ApiError(422, "start must not be after end")
        measurement = measurement_of(metric)
        statement = (
            f'SELECT "value", "quality" FROM "{measurement}" WHERE "patient" = $patient '
            'AND "metric" = $metric AND time >= $start AND time <= $end '
            f"ORDER BY time ASC LIMIT {limit + 1}"
        )
        params = {
            "patient": patient,
            "metric": metric,
            "start": start_at.isoformat().replace("+00:00", "Z"),
            "end": end_at.isoformat().replace("+00:00", "Z"),
        }
        try:
            series = await influx.query(statement, params)
        except InfluxError as exc:
            raise ApiError(503, f"time-series store unavailable: {exc}") from None
        rows: list[list[Any]] = series[0]["values"] if series else []
        points = [
            VitalPoint(time=_from_ns(int(row[0])), time_ns=int(row[0]), value=float(row[1]),
                       quality=int(row[2] or 0))
            for row in rows[:limit]
        ]
        return VitalsResponse(patient=patient, metric=metric, unit=CATALOGUE[metric].unit, start=start_at,
                              end=end_at, points=points, truncated=len(rows) > limit)

    @app.post("/api/v1/alerts/{alert_id}/seen", response_model=SeenOut, responses=ERROR_RESPONSES)
    async def mark_alert_seen(
        request: Request,
        alert_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
        principal: Annotated[Principal, Depends(require(Permission.MARK_ALERT_SEEN))],
    ) -> SeenOut:
        """Record that the caller (family, or the care team) has seen the alert; not a clinical acknowledgement."""
        found = await asyncio.to_thread(_load_alert, store, alert_id)
        check_patient(request, principal, Permission.MARK_ALERT_SEEN, found.patient if found is not None else None)
        at = await asyncio.to_thread(_mark_seen, store, alert_id, principal.user.id, clock())
        return SeenOut(alert=alert_id, seen_by=principal.username, seen_at=at)

    @app.get("/api/v1/ingest/stats", responses=ERROR_RESPONSES)
    async def ingest_stats(
        _principal: Annotated[Principal, Depends(require(Permission.READ_INGEST))],
    ) -> dict[str, Any]:
        """This process's ingest counters (zero in an API-only process) and the store's totals."""
        current = stats() if stats is not None else IngestStats()
        return {
            "stored_batches": current.stored_batches,
            "stored_samples": current.stored_samples,
            "duplicates": current.duplicates,
            "rejected": current.rejected,
            "rejected_by_reason": dict(current.rejected_by_reason),
            "alerts_opened": current.alerts_opened,
            "dead_letters": await asyncio.to_thread(store.dead_letter_count),
            "ingested_batches": await asyncio.to_thread(store.ingested_batches),
            "ingested_samples": await asyncio.to_thread(store.ingested_samples),
        }

    @app.get("/api/v1/dead-letters", responses=ERROR_RESPONSES)
    async def dead_letters(
        _principal: Annotated[Principal, Depends(require(Permission.READ_INGEST))],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """The newest rejected messages with their reasons (payload shown as a hex prefix)."""
        return [
            {"id": letter.id, "received_at": _aware(letter.received_at), "topic": letter.topic,
             "reason": letter.reason, "size": letter.size, "payload_hex": letter.payload[:64].hex()}
            for letter in await asyncio.to_thread(store.dead_letters, limit)
        ]

    app.include_router(alerts_router(store, clock))
    app.include_router(gateway_router(store, clock, gateway_silent_s))
    app.include_router(views_router(store, influx, clock, ViewOptions(gateway_silent_s=gateway_silent_s)))
    app.include_router(fhir_router(store, influx, clock))
    app.include_router(enrolment_router)
    app.include_router(settings_router(SettingsStore(store.engine), influx,
                                       build_rules(None) if rules is None else rules, clock=clock,
                                       on_saved=on_settings_saved))
    install_web(app)
    check_routes(app)
    return app
