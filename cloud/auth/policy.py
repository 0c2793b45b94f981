"""Who may do what: the one place that decides, used by every API route through FastAPI dependencies.

Three kinds of permission:

- **role permissions** (manage users, the registry, gateways; read the audit trail and the ingest's
  health) come from the user's role alone: only an admin has them;
- **patient permissions** (read vitals, alerts, their notification log and the registry record;
  acknowledge or resolve an alert, silence a patient's alerts; mark an alert seen; read and change
  the patient's settings) come from the user's *relation* to that patient: on the care team (doctor,
  nurse, or an admin who also treats) or family. No role reads any patient without a relation: an
  admin on no care team reads no vitals. Family may read, and mark alerts seen, but not acknowledge,
  resolve or silence them, nor read or change the clinical settings (thresholds, targets, care plan:
  the clinicians' working tools, whose reading without their context would alarm more than inform);
- **reading gateways** comes from either: an admin reads every gateway, a care team member those its
  patients are bound to (family none);
- **enrolling a gateway** (making its one-time enrolment code) is for an admin, or for a *doctor* on the care
  team of every patient bound to the gateway (the route checks each patient once it knows the gateway).

A patient the caller has no relation to is answered 404, exactly like a patient that does not exist, so
existence does not leak; a relation that lacks the permission (family acknowledging) is 403; no or a bad
token is 401. Every decision is noted for the audit trail (``cloud.api`` writes one row per request).

Using it in a route (the alerts router, or any new one)::

    from cloud.auth.policy import Permission, Principal, check_patient, current_user, require

    @router.get("/api/v1/patients/{patient}/things", responses=ERROR_RESPONSES)
    async def things(patient: str, principal: Annotated[Principal, Depends(require(Permission.READ_ALERTS))]):
        ...  # ``{patient}`` in the path is checked by require(); nothing else to do

    @router.post("/api/v1/things/{thing_id}/ack")
    async def ack(thing_id: int, request: Request,
                  principal: Annotated[Principal, Depends(require(Permission.ACK_ALERT))]):
        thing = load(thing_id)                       # the patient is known only now:
        check_patient(request, principal, Permission.ACK_ALERT, thing.patient if thing else None)

    # a list over several patients: filter by principal.patients(Permission.READ_ALERTS)
    # and tell the audit trail which patients were read: note_patients(request, patients)

Every route under ``/api/`` and ``/fhir/`` must carry ``require(...)`` or be listed in :data:`OPEN_ROUTES`;
:func:`check_routes` (run when the app is built) refuses an app that has one that does neither.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer

from cloud.audit import AuditLog
from cloud.auth._errors import ApiError
from cloud.auth._identity import Identity, Role, User
from cloud.auth._tokens import TokenError, TokenSigner
from cloud.registry import Registry, Relation
from vitals.samples import is_identifier

__all__ = [
    "OPEN_ROUTES",
    "PATIENT_PERMISSIONS",
    "RELATION_PERMISSIONS",
    "ROLE_OR_RELATION_PERMISSIONS",
    "ROLE_PERMISSIONS",
    "CARE_DOCTOR_PERMISSIONS",
    "AuditNote",
    "Permission",
    "Principal",
    "SecurityContext",
    "audit_note",
    "check_patient",
    "check_routes",
    "current_user",
    "decide",
    "note_patients",
    "permission_of",
    "require",
    "route_permissions",
]


class Permission(enum.StrEnum):
    """What a route does; the value is the audit trail's ``action``."""

    READ_VITALS = "vitals.read"
    READ_ALERTS = "alerts.read"
    ACK_ALERT = "alerts.ack"
    RESOLVE_ALERT = "alerts.resolve"
    SILENCE_ALERTS = "alerts.silence"
    MARK_ALERT_SEEN = "alerts.seen"
    READ_PATIENT = "patients.read"
    READ_SETTINGS = "settings.read"
    CHANGE_SETTINGS = "settings.change"
    READ_SELF = "self.read"
    READ_INGEST = "ingest.read"
    READ_GATEWAYS = "gateways.read"
    MANAGE_USERS = "users.manage"
    MANAGE_REGISTRY = "registry.manage"
    READ_AUDIT = "audit.read"
    ENROL_GATEWAY = "gateways.enrol"


PATIENT_PERMISSIONS = frozenset({Permission.READ_VITALS, Permission.READ_ALERTS, Permission.ACK_ALERT,
                                 Permission.RESOLVE_ALERT, Permission.SILENCE_ALERTS, Permission.MARK_ALERT_SEEN,
                                 Permission.READ_PATIENT, Permission.READ_SETTINGS, Permission.CHANGE_SETTINGS})
"""Granted by a relation to the patient, never by a role."""

ROLE_OR_RELATION_PERMISSIONS = frozenset({Permission.READ_GATEWAYS})
"""Granted by a role (on everything) or by a relation (on what concerns that patient): an admin reads
every gateway, a care team member the gateways its patients are bound to."""

CARE_DOCTOR_PERMISSIONS = frozenset({Permission.ENROL_GATEWAY})
"""Granted by the admin role (on everything), or to a doctor on the care team of the patient concerned
(a nurse's care relation is not enough)."""

RELATION_PERMISSIONS: Mapping[Relation, frozenset[Permission]] = {
    Relation.CARE: PATIENT_PERMISSIONS | {Permission.READ_GATEWAYS},
    Relation.FAMILY: frozenset({Permission.READ_VITALS, Permission.READ_ALERTS, Permission.MARK_ALERT_SEEN,
                                Permission.READ_PATIENT}),
}

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.READ_SELF, Permission.READ_INGEST, Permission.MANAGE_USERS,
                           Permission.MANAGE_REGISTRY, Permission.READ_AUDIT, Permission.READ_GATEWAYS,
                           Permission.ENROL_GATEWAY}),
    Role.DOCTOR: frozenset({Permission.READ_SELF}),
    Role.NURSE: frozenset({Permission.READ_SELF}),
    Role.FAMILY: frozenset({Permission.READ_SELF}),
}

OPEN_ROUTES = frozenset({
    "/health", "/metrics", "/api/v1/health",  # operations: probes and Prometheus
    "/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/auth/logout",  # they carry their own credentials
    "/api/v1/enrol",  # the one-time enrolment code is the credential (wrong codes are throttled)
    "/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect",
    "/fhir/metadata",  # the FHIR CapabilityStatement: it tells a client how to sign in
})
"""Routes that need no access token."""


def decide(role: Role, relation: Relation | None, permission: Permission) -> bool:
    """The whole policy: may a user of ``role``, standing in ``relation`` to the patient concerned (None: no
    relation, or no patient concerned), do ``permission``?"""
    if permission in PATIENT_PERMISSIONS:
        return relation is not None and permission in RELATION_PERMISSIONS[relation]
    if permission in CARE_DOCTOR_PERMISSIONS:
        return role is Role.ADMIN or (role is Role.DOCTOR and relation is Relation.CARE)
    if permission in ROLE_OR_RELATION_PERMISSIONS and relation is not None:
        return permission in ROLE_PERMISSIONS[role] or permission in RELATION_PERMISSIONS[relation]
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user of a request and the patients they stand in relation to."""

    user: User
    relations: Mapping[str, Relation] = field(default_factory=dict)

    @property
    def username(self) -> str:
        """The user's name."""
        return self.user.username

    @property
    def role(self) -> Role:
        """The user's role."""
        return self.user.role

    def may(self, permission: Permission, patient: str | None = None) -> bool:
        """Whether this user may do ``permission`` (on ``patient``, for a patient permission)."""
        return decide(self.role, self.relations.get(patient) if patient is not None else None, permission)

    def patients(self, permission: Permission) -> frozenset[str]:
        """Every patient on whom this user may do ``permission``."""
        return frozenset(p for p, relation in self.relations.items() if decide(self.role, relation, permission))


@dataclass
class SecurityContext:
    """What the dependencies need, kept on ``app.state.security``.

    ``on_gateway_revoked`` (optional) is called with a gateway's id after the registry revoked it, e.g.
    :meth:`cloud.broker.BrokerAccounts.revoke_gateway` to cut its broker access at once; it may block
    (it runs in a worker thread) and raises to say the revocation is not complete.
    """

    identity: Identity
    registry: Registry
    audit: AuditLog
    signer: TokenSigner
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    on_gateway_revoked: Callable[[str], None] | None = None


@dataclass
class AuditNote:
    """What a request did, for its audit row(s): filled in by the dependencies and the route."""

    action: str = ""
    actor: str | None = None
    role: str | None = None
    patients: list[str] = field(default_factory=list)


def audit_note(request: Request) -> AuditNote:
    """The request's audit note (made on first use)."""
    note: AuditNote | None = getattr(request.state, "audit", None)
    if note is None:
        note = AuditNote()
        request.state.audit = note
    return note


def note_patients(request: Request, patients: Iterable[str]) -> None:
    """Tell the audit trail that this request read or changed data of ``patients``."""
    note = audit_note(request)
    for patient in patients:
        if patient not in note.patients:
            note.patients.append(patient)


_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _context(request: Request) -> SecurityContext:
    context: SecurityContext = request.app.state.security
    return context


async def current_user(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    """The signed-in user (401 without a valid, unexpired token of an enabled user)."""
    context = _context(request)
    if token is None:
        raise ApiError(401, "sign in first: send 'Authorization: Bearer <access token>'", headers=_CHALLENGE)
    try:
        claims = context.signer.verify(token, now=context.clock())
    except TokenError:
        raise ApiError(401, "the access token is invalid or expired", headers=_CHALLENGE) from None
    user = await asyncio.to_thread(context.identity.user, claims.user_id)
    if user is None or user.disabled or user.token_version != claims.version:
        raise ApiError(401, "the access token is no longer valid", headers=_CHALLENGE)
    note = audit_note(request)
    note.actor, note.role = user.username, user.role.value
    relations = await asyncio.to_thread(context.registry.relations, user.id)
    return Principal(user, relations)


def check_patient(request: Request, principal: Principal, permission: Permission, patient: str | None) -> None:
    """Refuse unless ``principal`` may do ``permission`` on ``patient`` (None: the thing was not found).

    404 when the caller has no relation to the patient (or there is none), 403 when the relation does not
    allow ``permission``. Notes the patient for the audit trail either way.
    """
    if patient is not None:
        note_patients(request, [patient])
    relation = principal.relations.get(patient) if patient is not None else None
    if relation is None:
        raise ApiError(404, "not found")
    if not principal.may(permission, patient):
        raise ApiError(403, f"a {relation.value} relation does not allow {permission.value}")


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that returns the signed-in :class:`Principal` once ``permission`` is allowed.

    A patient permission on a route with ``{patient}`` in its path is decided for that patient; on any
    other route it needs a relation to at least one patient, and the route calls
    :func:`check_patient` (or filters by :meth:`Principal.patients`) once it knows the patient.
    """

    async def dependency(request: Request, principal: Annotated[Principal, Depends(current_user)]) -> Principal:
        audit_note(request).action = permission.value
        patient = request.path_params.get("patient")
        if permission in PATIENT_PERMISSIONS:
            if patient is not None:
                check_patient(request, principal, permission, patient if is_identifier(patient) else None)
            elif not principal.relations:
                raise ApiError(403, f"a {principal.role.value} on no care team and of no family may not "
                               f"{permission.value}")
        elif permission in ROLE_OR_RELATION_PERMISSIONS:
            if not principal.may(permission) and not principal.patients(permission):
                raise ApiError(403, f"a {principal.role.value} on no care team may not {permission.value}")
        elif permission in CARE_DOCTOR_PERMISSIONS:
            if not principal.may(permission) and not principal.patients(permission):
                raise ApiError(403, f"only an admin, or a doctor on the patients' care team, may {permission.value}")
        elif not principal.may(permission):
            raise ApiError(403, f"role {principal.role.value} may not {permission.value}")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


def permission_of(route: APIRoute) -> Permission | None:
    """The permission a route requires (None when it requires none)."""
    for dependant in route.dependant.dependencies:
        found = getattr(dependant.call, "permission", None)
        if isinstance(found, Permission):
            return found
    return None


def route_permissions(app: FastAPI) -> list[tuple[str, str, Permission | None]]:
    """``(method, path, permission)`` of every route of ``app``, those of included routers too (and the
    permission a router's own ``dependencies`` require)."""
    found: list[tuple[str, str, Permission | None]] = []

    def walk(routes: Iterable[Any], prefix: str, inherited: Permission | None) -> None:
        for route in routes:
            original = getattr(route, "original_router", None)  # a router included by app.include_router
            if original is not None:
                context = getattr(route, "include_context", None)
                permission = inherited
                for depends in getattr(context, "dependencies", ()):
                    marked = getattr(getattr(depends, "dependency", None), "permission", None)
                    permission = marked if isinstance(marked, Permission) else permission
                walk(original.routes, prefix + str(getattr(context, "prefix", "")), permission)
                continue
            permission = (permission_of(route) if isinstance(route, APIRoute) else None) or inherited
            for method in sorted((getattr(route, "methods", None) or set()) - {"HEAD"}):
                found.append((method, prefix + str(getattr(route, "path", "")), permission))

    walk(app.routes, "", None)
    return found


def check_routes(app: FastAPI) -> None:
    """Raise ``RuntimeError`` when a route under ``/api/`` or ``/fhir/`` neither requires a permission nor is open."""
    missing = [f"{method} {path}" for method, path, permission in route_permissions(app)
               if path.startswith(("/api/", "/fhir/")) and path not in OPEN_ROUTES and permission is None]
    if missing:
        raise RuntimeError(f"routes without a policy (add require(Permission.X) or list them as open): {missing}")
