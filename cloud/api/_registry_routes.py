"""The registry (patients, care teams, family, gateways, devices) and the audit trail over HTTP.

``/api/v1/patients[/{patient}]``: a user's own patients (care team or family). ``/api/v1/registry/*``
and ``/api/v1/audit``: admins.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from cloud.audit import AuditQuery
from cloud.auth import ERROR_RESPONSES, ApiError
from cloud.auth.policy import Permission, Principal, SecurityContext, note_patients, require
from cloud.registry import Device, Gateway, Patient, RegistryError

__all__ = ["registry_router"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class PatientIn(BaseModel):
    """A patient to register."""

    id: str = Field(pattern=_ID, description="pseudonymous id, as the gateway sends it")
    display_name: str = Field(min_length=1, max_length=128)
    date_of_birth: dt.date | None = None
    conditions: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default=[], max_length=50)


class PatientOut(PatientIn):
    """A registered patient with the users who may see them."""

    care_team: list[str]
    family: list[str]


class GatewayIn(BaseModel):
    """A gateway to register, with the patients it may send data for."""

    id: str = Field(pattern=_ID)
    home: str = Field(min_length=1, max_length=128)
    patients: list[Annotated[str, Field(pattern=_ID)]] = Field(default=[], max_length=100)


class GatewayOut(GatewayIn):
    """A registered gateway."""

    revoked: bool


class DeviceIn(BaseModel):
    """A device to register."""

    id: str = Field(pattern=_ID)
    patient: str = Field(pattern=_ID)
    gateway: str | None = Field(default=None, pattern=_ID)
    profile: str | None = Field(default=None, max_length=128)


class AuditEntryOut(BaseModel):
    """One audit row."""

    id: int
    at: dt.datetime
    actor: str | None
    role: str | None
    patient: str | None
    action: str
    target: str
    client: str
    status: int
    outcome: str
    hash: str


class AuditVerifyOut(BaseModel):
    """The result of walking the chain."""

    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str


def _patient_out(patient: Patient) -> PatientOut:
    return PatientOut(id=patient.id, display_name=patient.display_name, date_of_birth=patient.date_of_birth,
                      conditions=list(patient.conditions), care_team=list(patient.care_team),
                      family=list(patient.family))


def _gateway_out(gateway: Gateway) -> GatewayOut:
    return GatewayOut(id=gateway.id, home=gateway.home, patients=list(gateway.patients), revoked=gateway.revoked)


def _context(request: Request) -> SecurityContext:
    context: SecurityContext = request.app.state.security
    return context


async def _registry(request: Request, call: Callable[..., _T], *args: Any) -> _T:
    try:
        return await asyncio.to_thread(call, *args)
    except RegistryError as exc:
        status = {"not_found": 404, "conflict": 409}.get(exc.kind, 422)
        raise ApiError(status, str(exc)) from None


_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 409: {"model": ERROR_RESPONSES[404]["model"], "description": "Already registered"}}
ReadPatient = Annotated[Principal, Depends(require(Permission.READ_PATIENT))]
ManageRegistry = Annotated[Principal, Depends(require(Permission.MANAGE_REGISTRY))]
ReadAudit = Annotated[Principal, Depends(require(Permission.READ_AUDIT))]

registry_router = APIRouter()


# -- a user's own patients -------------------------------------------------------------------------------


@registry_router.get("/api/v1/patients", response_model=list[PatientOut], responses=ERROR_RESPONSES)
async def my_patients(request: Request, principal: ReadPatient) -> list[PatientOut]:
    """The patients the caller is on the care team of, or family of."""
    visible = principal.patients(Permission.READ_PATIENT)
    patients = await _registry(request, _context(request).registry.patients, visible)
    note_patients(request, [p.id for p in patients])
    return [_patient_out(p) for p in patients]


@registry_router.get("/api/v1/patients/{patient}", response_model=PatientOut, responses=ERROR_RESPONSES)
async def one_patient(request: Request, patient: str, _principal: ReadPatient) -> PatientOut:
    """One of the caller's patients (404 for any other)."""
    found = await _registry(request, _context(request).registry.patient, patient)
    if found is None:
        raise ApiError(404, "not found")
    return _patient_out(found)


# -- the registry (admins) -------------------------------------------------------------------------------


@registry_router.get("/api/v1/registry/patients", response_model=list[PatientOut], responses=_ADMIN_ERRORS)
async def registry_patients(request: Request, _principal: ManageRegistry) -> list[PatientOut]:
    """Every registered patient."""
    patients = await _registry(request, _context(request).registry.patients)
    note_patients(request, [p.id for p in patients])
    return [_patient_out(p) for p in patients]


@registry_router.post("/api/v1/registry/patients", response_model=PatientOut, status_code=201,
                      responses=_ADMIN_ERRORS)
async def register_patient(request: Request, body: PatientIn, _principal: ManageRegistry) -> PatientOut:
    """Register a patient."""
    note_patients(request, [body.id])
    patient = Patient(body.id, body.display_name, body.date_of_birth, tuple(body.conditions))
    return _patient_out(await _registry(request, _context(request).registry.add_patient, patient))


@registry_router.put("/api/v1/registry/patients/{patient_id}/care-team/{username}", status_code=204,
                     responses=_ADMIN_ERRORS)
async def add_care(request: Request, patient_id: str, username: str, _principal: ManageRegistry) -> Response:
    """Put a doctor or nurse (or an admin who treats) on the patient's care team."""
    note_patients(request, [patient_id])
    await _registry(request, _context(request).registry.add_care_team_member, patient_id, username)
    return Response(status_code=204)


@registry_router.delete("/api/v1/registry/patients/{patient_id}/care-team/{username}", status_code=204,
                        responses=_ADMIN_ERRORS)
async def remove_care(request: Request, patient_id: str, username: str, _principal: ManageRegistry) -> Response:
    """Take a user off the patient's care team."""
    note_patients(request, [patient_id])
    await _registry(request, _context(request).registry.remove_care_team_member, patient_id, username)
    return Response(status_code=204)


@registry_router.put("/api/v1/registry/patients/{patient_id}/family/{username}", status_code=204,
                     responses=_ADMIN_ERRORS)
async def add_family(request: Request, patient_id: str, username: str, _principal: ManageRegistry) -> Response:
    """Let a family user follow the patient."""
    note_patients(request, [patient_id])
    await _registry(request, _context(request).registry.add_family_member, patient_id, username)
    return Response(status_code=204)


@registry_router.delete("/api/v1/registry/patients/{patient_id}/family/{username}", status_code=204,
                        responses=_ADMIN_ERRORS)
async def remove_family(request: Request, patient_id: str, username: str, _principal: ManageRegistry) -> Response:
    """Stop a family user following the patient."""
    note_patients(request, [patient_id])
    await _registry(request, _context(request).registry.remove_family_member, patient_id, username)
    return Response(status_code=204)


@registry_router.get("/api/v1/registry/gateways", response_model=list[GatewayOut], responses=_ADMIN_ERRORS)
async def registry_gateways(request: Request, _principal: ManageRegistry) -> list[GatewayOut]:
    """Every registered gateway."""
    return [_gateway_out(g) for g in await _registry(request, _context(request).registry.gateways)]


@registry_router.post("/api/v1/registry/gateways", response_model=GatewayOut, status_code=201,
                      responses=_ADMIN_ERRORS)
async def register_gateway(request: Request, body: GatewayIn, _principal: ManageRegistry) -> GatewayOut:
    """Register a gateway bound to a home and its patients."""
    note_patients(request, body.patients)
    gateway = Gateway(body.id, body.home, tuple(body.patients))
    return _gateway_out(await _registry(request, _context(request).registry.add_gateway, gateway))


@registry_router.post("/api/v1/registry/gateways/{gateway_id}/revoke", response_model=GatewayOut,
                      responses=_ADMIN_ERRORS)
async def revoke_gateway(request: Request, gateway_id: str, _principal: ManageRegistry) -> GatewayOut:
    """Revoke a gateway: the ingest refuses its batches from the next registry cache refresh on, and where the
    cloud manages broker accounts the broker deletes its account and disconnects it at once. Revoking again
    retries the broker's part."""
    context = _context(request)
    gateway = await _registry(request, context.registry.revoke_gateway, gateway_id)
    accounts = getattr(getattr(request.app.state, "enrolment", None), "accounts", None)
    on_broker = context.on_gateway_revoked or (accounts.revoke_gateway if accounts is not None else None)
    if on_broker is not None:
        try:
            await asyncio.to_thread(on_broker, gateway_id)
        except Exception as exc:  # the registry's revocation stands; say that the broker's did not happen
            log.error("gateway %s is revoked in the registry but not on the broker: %s", gateway_id,
                      type(exc).__name__)
            raise ApiError(503, f"gateway {gateway_id} is revoked in the registry, but its broker account could "
                           "not be removed yet; revoke it again to retry") from None
    return _gateway_out(gateway)


@registry_router.put("/api/v1/registry/gateways/{gateway_id}/patients/{patient_id}", status_code=204,
                     responses=_ADMIN_ERRORS)
async def bind_patient(request: Request, gateway_id: str, patient_id: str, _principal: ManageRegistry) -> Response:
    """Let the gateway send data for the patient."""
    note_patients(request, [patient_id])
    await _registry(request, _context(request).registry.bind_patient, gateway_id, patient_id)
    return Response(status_code=204)


@registry_router.delete("/api/v1/registry/gateways/{gateway_id}/patients/{patient_id}", status_code=204,
                        responses=_ADMIN_ERRORS)
async def unbind_patient(request: Request, gateway_id: str, patient_id: str,
                         _principal: ManageRegistry) -> Response:
    """Stop the gateway sending data for the patient."""
    note_patients(request, [patient_id])
    await _registry(request, _context(request).registry.unbind_patient, gateway_id, patient_id)
    return Response(status_code=204)


@registry_router.get("/api/v1/registry/devices", response_model=list[DeviceIn], responses=_ADMIN_ERRORS)
async def registry_devices(request: Request, _principal: ManageRegistry) -> list[DeviceIn]:
    """Every registered device."""
    return [DeviceIn(id=d.id, patient=d.patient, gateway=d.gateway, profile=d.profile)
            for d in await _registry(request, _context(request).registry.devices)]


@registry_router.post("/api/v1/registry/devices", response_model=DeviceIn, status_code=201,
                      responses=_ADMIN_ERRORS)
async def register_device(request: Request, body: DeviceIn, _principal: ManageRegistry) -> DeviceIn:
    """Register a device bound to a patient."""
    note_patients(request, [body.patient])
    await _registry(request, _context(request).registry.add_device,
                    Device(body.id, body.patient, body.gateway, body.profile))
    return body


# -- the audit trail (admins) ----------------------------------------------------------------------------


@registry_router.get("/api/v1/audit", response_model=list[AuditEntryOut], responses=ERROR_RESPONSES)
async def audit_entries(
    request: Request,
    _principal: ReadAudit,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    patient: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[Literal["allowed", "denied", "failed"] | None, Query()] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryOut]:
    """Audit rows, newest first, filtered; page back with ``before_id`` (the smallest id seen)."""
    query = AuditQuery(actor=actor, patient=patient, action=action, outcome=outcome, since=since, until=until,
                       before_id=before_id, limit=limit)
    entries = await asyncio.to_thread(_context(request).audit.entries, query)
    return [AuditEntryOut(id=e.id, at=e.at, actor=e.actor, role=e.role, patient=e.patient, action=e.action,
                          target=e.target, client=e.client, status=e.status, outcome=e.outcome, hash=e.hash)
            for e in entries]


@registry_router.get("/api/v1/audit/verify", response_model=AuditVerifyOut, responses=ERROR_RESPONSES)
async def audit_verify(request: Request, _principal: ReadAudit) -> AuditVerifyOut:
    """Walk the hash chain from the pruning anchor to the newest row; names the first row found wrong."""
    verdict = await asyncio.to_thread(_context(request).audit.verify)
    return AuditVerifyOut(ok=verdict.ok, checked=verdict.checked, first_bad_id=verdict.first_bad_id,
                          reason=verdict.reason)
