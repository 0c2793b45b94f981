"""Gateway enrolment over HTTP.

``POST /api/v1/gateways/{gateway}/enrolment`` (an admin, or a doctor on the care team of every patient bound
to the gateway): a one-time code, shown once. ``POST /api/v1/enrol`` (open: the code is the credential; wrong
codes are throttled per address): the gateway's identity, the broker's address and CA, and its broker login.
Both are audited (the code itself never is).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from cloud.auth import ERROR_RESPONSES, ApiError
from cloud.auth.policy import Permission, Principal, SecurityContext, audit_note, note_patients, require
from cloud.enrolment import BrokerUnavailable, Enrolment, EnrolmentError
from vitals.samples import IDENTIFIER_PATTERN

__all__ = ["ENROL_ERRORS", "enrolment_router"]

ENROL_ERRORS: dict[str, int] = {"wrong_code": 404, "used_code": 409, "expired_code": 410, "gateway_revoked": 403,
                                "unknown_gateway": 404, "throttled": 429}
"""The HTTP status of each :class:`cloud.enrolment.EnrolmentError` kind; the kind is the error's ``code``."""


class EnrolmentCodeOut(BaseModel):
    """A new enrolment code: give it to the family; it works once, until ``expires_at``."""

    code: str = Field(description="grouped like ABCD-EFGH-JK; dashes, spaces and case do not matter")
    gateway: str
    patients: list[str]
    expires_at: dt.datetime


class EnrolIn(BaseModel):
    """What the gateway shows."""

    code: str = Field(min_length=1, max_length=64)


class BrokerLogin(BaseModel):
    """The gateway's own broker login."""

    username: str
    password: str


class EnrolOut(BaseModel):
    """Everything a gateway needs to send: who it is, where to, whom to trust and how to log in.

    ``ca_pem`` is null when the broker's certificate is signed by a CA the system trusts (or the broker has no
    TLS); ``credentials`` is null when the broker has no per-gateway logins.
    """

    gateway: str
    patients: list[str]
    broker_url: str
    ca_pem: str | None
    credentials: BrokerLogin | None


def _enrolment(request: Request) -> Enrolment:
    enrolment: Enrolment = request.app.state.enrolment
    return enrolment


def _context(request: Request) -> SecurityContext:
    context: SecurityContext = request.app.state.security
    return context


def _refusal(exc: EnrolmentError) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.kind == "throttled" else None
    return ApiError(ENROL_ERRORS[exc.kind], str(exc), code=exc.kind, headers=headers)


_ISSUE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 403: {"model": ERROR_RESPONSES[403]["model"],
                             "description": "Not allowed, or the gateway is revoked"}}
_ENROL_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ERROR_RESPONSES[404]["model"], "description": description}
    for status, description in ((403, "gateway_revoked: the code's gateway is revoked"),
                                (404, "wrong_code: no such code"), (409, "used_code: the code was used already"),
                                (410, "expired_code: the code has expired"), (422, "The body is not valid"),
                                (429, "throttled: too many wrong codes from this address"),
                                (503, "The broker cannot take a new gateway just now; try again"))
}

enrolment_router = APIRouter()


@enrolment_router.post("/api/v1/gateways/{gateway}/enrolment", response_model=EnrolmentCodeOut, status_code=201,
                       responses=_ISSUE_ERRORS)
async def issue_code(
    request: Request,
    gateway: Annotated[str, Path(pattern=IDENTIFIER_PATTERN.pattern)],
    principal: Annotated[Principal, Depends(require(Permission.ENROL_GATEWAY))],
) -> EnrolmentCodeOut:
    """A one-time enrolment code for a registered gateway (valid 24 h unless the cloud says otherwise)."""
    context = _context(request)
    found = await asyncio.to_thread(context.registry.gateway, gateway)
    if found is not None:
        note_patients(request, found.patients)
    if not principal.may(Permission.ENROL_GATEWAY):  # a doctor: on the care team of every patient it serves
        patients = found.patients if found is not None else ()
        if not any(p in principal.relations for p in patients):  # no relation: as if it did not exist
            raise ApiError(404, "not found")
        if not all(principal.may(Permission.ENROL_GATEWAY, p) for p in patients):
            raise ApiError(403, "only an admin, or a doctor on the care team of every patient of this gateway, "
                           "may enrol it")
    elif found is None:
        raise ApiError(404, f"no gateway {gateway!r}; register it first")
    try:
        issued = await asyncio.to_thread(_enrolment(request).issue, gateway, created_by=principal.username,
                                         now=context.clock())
    except EnrolmentError as exc:
        raise _refusal(exc) from None
    return EnrolmentCodeOut(code=issued.code, gateway=issued.gateway, patients=list(issued.patients),
                            expires_at=issued.expires_at)


@enrolment_router.post("/api/v1/enrol", response_model=EnrolOut, responses=_ENROL_ERRORS)
async def enrol(request: Request, body: EnrolIn) -> EnrolOut:
    """Spend an enrolment code: the gateway's identity, the broker's address and CA, and its broker login.

    Every code works once. Errors name the case in ``error.code``: ``wrong_code``, ``used_code``,
    ``expired_code``, ``gateway_revoked`` or ``throttled`` (after repeated wrong codes from one address).
    """
    note = audit_note(request)
    note.action = "gateways.enrolled"
    client = request.client.host if request.client is not None else "-"
    try:
        grant = await asyncio.to_thread(_enrolment(request).enrol, body.code, client=client,
                                        now=_context(request).clock())
    except EnrolmentError as exc:
        raise _refusal(exc) from None
    except BrokerUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    note.actor, note.role = grant.gateway, "gateway"
    note_patients(request, grant.patients)
    credentials = (BrokerLogin(username=grant.username, password=grant.password)
                   if grant.username is not None and grant.password is not None else None)
    return EnrolOut(gateway=grant.gateway, patients=list(grant.patients), broker_url=grant.broker_url,
                    ca_pem=grant.ca_pem, credentials=credentials)
