"""``/fhir``: the FHIR R4 read API over the same policy, audit trail and stores as ``/api/v1``.

Every route but ``/fhir/metadata`` needs a token and a permission from :mod:`cloud.auth.policy`; a patient
the caller has no relation to is 404, as on ``/api/v1``. Every answer is ``application/fhir+json`` (NDJSON
for the ndjson export), every error an ``OperationOutcome``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from cloud.auth import ApiError
from cloud.auth.policy import Permission, Principal, SecurityContext, check_patient, note_patients, require
from cloud.fhir._capability import capability_statement
from cloud.fhir._codes import metrics_for_code
from cloud.fhir._export import bundle_chunks, export_resources, ndjson_chunks
from cloud.fhir._observation import fhir_id, observations_from_values, waveform_observation
from cloud.fhir._resources import (
    alert_issue,
    device_resource,
    gateway_resource,
    operation_outcome,
    patient_resource,
    searchset,
)
from cloud.fhir._search import SearchError, TimeRange, parse_date_params, parse_reference
from cloud.fhir._source import FhirSource
from cloud.store import Store
from cloud.timeseries import InfluxError, InfluxV1Client
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import is_identifier

__all__ = ["FHIR_JSON", "FHIR_NDJSON", "FhirResponse", "fhir_router", "install_fhir_errors"]

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"

_NUMERIC = frozenset(name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.NUMERIC)
_MAX_COUNT = 1000
_MAX_WAVEFORM_WINDOWS = 20
_T = TypeVar("_T")


class FhirResponse(JSONResponse):
    """JSON served as ``application/fhir+json``."""

    media_type = FHIR_JSON


def _software_version() -> str:
    try:
        return version("vitalbridge")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
        return "0"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _security(request: Request) -> SecurityContext:
    context: SecurityContext = request.app.state.security
    return context


def _resolve(request: Request, principal: Principal, permission: Permission, raw: str) -> str:
    """The caller's patient ``raw`` names (its VitalBridge id or its FHIR id), or 404/403 as the policy says."""
    found = next((p for p in sorted(principal.patients(permission)) if raw in (p, fhir_id(p))), None)
    check_patient(request, principal, permission, found or (raw if is_identifier(raw) else None))
    if found is None:  # check_patient has refused every such case already
        raise ApiError(404, "not found")
    return found


def _search_patient(request: Request, principal: Principal, permission: Permission, value: str | None) -> str:
    if value is None:
        raise ApiError(400, "the 'patient' search parameter is required (Patient/<id>)")
    try:
        raw = parse_reference(value, "Patient")
    except SearchError as exc:
        raise ApiError(400, str(exc)) from None
    return _resolve(request, principal, permission, raw)


def _span(dates: list[str] | None, cursor: int | None) -> TimeRange:
    try:
        span = parse_date_params(dates or [])
    except SearchError as exc:
        raise ApiError(400, str(exc)) from None
    if cursor is not None:
        span = TimeRange(max(span.start_ns, cursor), span.end_ns)
    return span


def _next_url(request: Request, cursor: int | None) -> str | None:
    if cursor is None:
        return None
    params = [(key, value) for key, value in request.query_params.multi_items() if key != "_cursor"]
    params.append(("_cursor", str(cursor)))
    return str(request.url.replace(query=urlencode(params)))


def _self_url(request: Request) -> str:
    return str(request.url)


async def _unavailable(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except InfluxError as exc:
        raise ApiError(503, f"time-series store unavailable: {exc}") from None


Count = Annotated[int, Query(alias="_count", ge=1, le=_MAX_COUNT)]
Cursor = Annotated[int | None, Query(alias="_cursor", ge=0, le=2**63 - 1, description="paging cursor")]
Dates = Annotated[list[str] | None, Query(alias="date", max_length=4)]


def fhir_router(store: Store, influx: InfluxV1Client, clock: Callable[[], dt.datetime]) -> APIRouter:
    """The ``/fhir`` routes over ``store`` (registry, alerts) and ``influx`` (values)."""
    router = APIRouter(prefix="/fhir", include_in_schema=False, default_response_class=FhirResponse)

    def source(request: Request) -> FhirSource:
        return FhirSource(store, _security(request).registry, influx)

    @router.get("/metadata")
    async def metadata(request: Request) -> FhirResponse:
        """The CapabilityStatement (no token needed: it says how to get one)."""
        now = clock().isoformat().replace("+00:00", "Z")
        return FhirResponse(capability_statement(_base(request), _software_version(), now))

    @router.get("/Observation")
    async def search_observations(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        patient: Annotated[str | None, Query(max_length=200)] = None,
        code: Annotated[list[str] | None, Query(max_length=4)] = None,
        date: Dates = None,
        count: Count = 100,
        cursor: Cursor = None,
    ) -> FhirResponse:
        """Observations of one patient, oldest first, a page at a time."""
        patient_id = _search_patient(request, principal, Permission.READ_VITALS, patient)
        metrics = _NUMERIC
        if code:  # repeated ``code``: all must hold; a comma: any may
            metrics = frozenset(CATALOGUE)
            for value in code:
                chosen: set[str] = set()
                for token in value.split(","):
                    chosen |= metrics_for_code(token.strip()) or frozenset()
                metrics &= chosen
        waveforms = {m for m in metrics if CATALOGUE[m].kind is MetricKind.WAVEFORM}
        if waveforms and waveforms != metrics:
            raise ApiError(400, "search waveforms (ECG, PPG) apart from numeric observations")
        span = _span(date, cursor)
        resources: list[dict[str, Any]] = []
        next_ns: int | None = None
        if metrics and not span.empty:
            reader = source(request)
            if waveforms:
                windows, next_ns = await _unavailable(reader.waveform_windows(
                    patient_id, sorted(metrics), span, min(count, _MAX_WAVEFORM_WINDOWS)))
                resources = [waveform_observation(window) for window in windows]
            else:
                page = await _unavailable(reader.numeric_page(patient_id, sorted(metrics), span, count))
                resources, next_ns = observations_from_values(page.values), page.next_ns
        return FhirResponse(searchset(resources, _base(request), _self_url(request), _next_url(request, next_ns)))

    @router.get("/Patient/{id}")
    async def read_patient(
        request: Request, id: str,
        principal: Annotated[Principal, Depends(require(Permission.READ_PATIENT))],
    ) -> FhirResponse:
        """One of the caller's patients."""
        patient_id = _resolve(request, principal, Permission.READ_PATIENT, id)
        found = await source(request).patient(patient_id)
        if found is None:
            raise ApiError(404, "not found")
        return FhirResponse(patient_resource(found))

    @router.get("/Device")
    async def search_devices(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_PATIENT))],
        patient: Annotated[str | None, Query(max_length=200)] = None,
    ) -> FhirResponse:
        """A patient's devices and the gateways they hang from."""
        patient_id = _search_patient(request, principal, Permission.READ_PATIENT, patient)
        reader = source(request)
        devices = await reader.devices([patient_id])
        gateways = await reader.gateways(d.gateway for d in devices if d.gateway)
        resources = [gateway_resource(g) for g in gateways] + [device_resource(d) for d in devices]
        return FhirResponse(searchset(resources, _base(request), _self_url(request), None, len(resources)))

    @router.get("/Device/{id}")
    async def read_device(
        request: Request, id: str,
        principal: Annotated[Principal, Depends(require(Permission.READ_PATIENT))],
    ) -> FhirResponse:
        """A device of one of the caller's patients, or a gateway bound to one of them."""
        reader = source(request)
        for device in await reader.devices(None):
            if id in (device.id, fhir_id(device.id)):
                check_patient(request, principal, Permission.READ_PATIENT, device.patient)
                return FhirResponse(device_resource(device))
        for gateway in await reader.all_gateways():
            if id in (gateway.id, fhir_id(gateway.id)):
                visible = [p for p in gateway.patients if principal.may(Permission.READ_PATIENT, p)]
                bound: list[str | None] = [*visible, *gateway.patients]
                check_patient(request, principal, Permission.READ_PATIENT, bound[0] if bound else None)
                note_patients(request, visible)
                return FhirResponse(gateway_resource(gateway))
        raise ApiError(404, "not found")

    @router.get("/DetectedIssue")
    async def search_alerts(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_ALERTS))],
        patient: Annotated[str | None, Query(max_length=200)] = None,
        date: Dates = None,
        count: Count = 100,
    ) -> FhirResponse:
        """A patient's alerts as DetectedIssue, oldest first (``_count`` newest of them)."""
        patient_id = _search_patient(request, principal, Permission.READ_ALERTS, patient)
        alerts = await source(request).alerts(patient_id, _span(date, None))
        resources = [alert_issue(alert) for alert in alerts[-count:]]
        return FhirResponse(searchset(resources, _base(request), _self_url(request), None, len(alerts)))

    @router.get("/Patient/{id}/$everything", response_model=None)
    async def everything(
        request: Request, id: str,
        principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        start: Annotated[str | None, Query(max_length=40, description="FHIR date: from its first instant")] = None,
        end: Annotated[str | None, Query(max_length=40, description="FHIR date: to its last instant")] = None,
        output: Annotated[Literal["bundle", "ndjson", "application/fhir+ndjson", "application/fhir+json"],
                          Query(alias="_outputFormat")] = "bundle",
        waveforms: Annotated[bool, Query(alias="_waveforms")] = False,
    ) -> StreamingResponse:
        """Everything of one patient between ``start`` and ``end``, streamed: a transaction Bundle (loadable
        with one POST to a FHIR server's base) or NDJSON with ``_outputFormat=application/fhir+ndjson``."""
        patient_id = _resolve(request, principal, Permission.READ_VITALS, id)
        if not principal.may(Permission.READ_ALERTS, patient_id):  # the export holds the alerts too
            raise ApiError(403, "exporting a patient needs the right to read their alerts")
        found = await source(request).patient(patient_id)
        if found is None:
            raise ApiError(404, "not found")
        dates = [f"ge{start}"] if start is not None else []
        dates += [f"le{end}"] if end is not None else []
        span = _span(dates, None)
        resources = export_resources(source(request), found, span, waveforms=waveforms)
        ndjson = output in ("ndjson", "application/fhir+ndjson")
        chunks = ndjson_chunks(resources) if ndjson else bundle_chunks(resources)
        return StreamingResponse(_encoded(chunks), media_type=FHIR_NDJSON if ndjson else FHIR_JSON)

    return router


async def _encoded(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.encode()


def install_fhir_errors(app: FastAPI) -> None:
    """Answer every error under ``/fhir`` (validation, refusals, unknown paths, crashes) as an OperationOutcome.

    Wraps the handlers :func:`cloud.auth.install_error_handlers` installed: they decide the status and the
    message, this only changes the shape (and the media type) for ``/fhir``.
    """
    for exc_class, handler in list(app.exception_handlers.items()):
        app.add_exception_handler(exc_class, _outcome_of(handler))


def _outcome_of(handler: Any) -> Callable[[Request, Exception], Any]:
    async def dispatch(request: Request, exc: Exception) -> Response:
        response: Response = await handler(request, exc)
        if not request.url.path.startswith("/fhir"):
            return response
        return _outcome_response(response)

    return dispatch


def _outcome_response(response: Response) -> Response:
    """``response`` (an API error, ``{"error": {"code", "message"}}``) as an OperationOutcome."""
    try:
        error = json.loads(bytes(response.body))["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "error", "error"
    headers = {k: v for k, v in response.headers.items() if k.lower() == "www-authenticate"}
    return FhirResponse(operation_outcome(code, message), status_code=response.status_code, headers=headers)
