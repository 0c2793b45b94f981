"""The role x endpoint matrix, generated from the app's route table: a route missing here fails the test.

Every route is called as every role (and anonymously); the status must be the one the policy says, and
every call by a signed-in user leaves an audit row naming the user, the patient and the outcome.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from cloud.api import create_app
from cloud.audit import AuditQuery
from cloud.auth import Role
from cloud.auth.policy import (
    CARE_DOCTOR_PERMISSIONS,
    OPEN_ROUTES,
    PATIENT_PERMISSIONS,
    ROLE_OR_RELATION_PERMISSIONS,
    Permission,
    SecurityContext,
    check_routes,
    decide,
    route_permissions,
)
from cloud.registry import Device, Gateway, Patient, Relation
from cloud.rules import AlertChange
from cloud.store import HealthUpdate, IngestCommit, Store
from cloud.timeseries import InfluxV1Client
from tests.asgi_stream import StreamCall
from tests.auth_helpers import add_user, bearer, security_for
from vitals.health import decode_status

S = 10**9
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
T0 = int(NOW.timestamp()) * S - 3600 * S

# Who is who: "own" patient p1, the "other" patient p2.
ROLES = {
    "anon": None,
    "admin": ("admin", (), ()),
    "admin_care": ("admin", ("p1",), ()),  # an admin who also treats p1
    "doctor": ("doctor", ("p1",), ()),
    "nurse": ("nurse", ("p1",), ()),
    "family": ("family", (), ("p1",)),
    "doctor_other": ("doctor", ("p2",), ()),
    "family_other": ("family", (), ("p2",)),
}
ADMINS = ("admin", "admin_care")
OWN = ("admin_care", "doctor", "nurse", "family")
CLINICIANS = ("admin_care", "doctor", "nurse")


@dataclass
class Case:
    """One call of a route, and the status each role gets (``default`` for roles not named; anon gets 401)."""

    method: str
    path: str
    default: int
    expect: dict[str, int] = field(default_factory=dict)
    json: Any = None
    params: dict[str, str] | None = None
    patient: str | None = None  # the patient the audit row must name
    open: bool = False
    stream: bool = False  # Server-Sent Events: read the first chunk, then hang up

    def status(self, role: str) -> int:
        if role == "anon" and not self.open:
            return 401
        return self.expect.get(role, self.default)


def _each(roles: tuple[str, ...], status: int) -> dict[str, int]:
    return dict.fromkeys(roles, status)


_unique = itertools.count()


def _cases() -> dict[tuple[str, str], Any]:
    """Route (method, path template) -> a function of the role making the case (bodies need unique ids)."""
    admin_only = {"default": 403, "expect": _each(ADMINS, 200)}

    def admin_made(status: int) -> dict[str, Any]:
        return {"default": 403, "expect": _each(ADMINS, status)}

    return {
        ("GET", "/health"): lambda r: Case("GET", "/health", 200, open=True),
        ("GET", "/api/v1/health"): lambda r: Case("GET", "/api/v1/health", 200, open=True),
        ("GET", "/metrics"): lambda r: Case("GET", "/metrics", 200, open=True),
        ("GET", "/api/openapi.json"): lambda r: Case("GET", "/api/openapi.json", 200, open=True),
        ("GET", "/api/docs"): lambda r: Case("GET", "/api/docs", 200, open=True),
        ("GET", "/api/docs/oauth2-redirect"): lambda r: Case("GET", "/api/docs/oauth2-redirect", 200, open=True),
        # The web app's shells and assets hold no patient data: their scripts call the API above.
        ("GET", "/"): lambda r: Case("GET", "/", 307, open=True),
        ("GET", "/web/"): lambda r: Case("GET", "/web/", 200, open=True),
        ("GET", "/web/login"): lambda r: Case("GET", "/web/login", 200, open=True),
        ("GET", "/web/worklist"): lambda r: Case("GET", "/web/worklist", 200, open=True),
        ("GET", "/web/alerts"): lambda r: Case("GET", "/web/alerts", 200, open=True),
        ("GET", "/web/alerts/{alert_id}"): lambda r: Case("GET", "/web/alerts/1", 200, open=True),
        ("GET", "/web/family"): lambda r: Case("GET", "/web/family", 200, open=True),
        ("GET", "/web/preferences"): lambda r: Case("GET", "/web/preferences", 200, open=True),
        ("GET", "/web/patients/{patient}"): lambda r: Case("GET", "/web/patients/p1", 200, open=True),
        ("GET", "/web/patients/{patient}/summary"): lambda r: Case("GET", "/web/patients/p1/summary", 200, open=True),
        ("GET", "/web/patients/{patient}/settings"): lambda r: Case("GET", "/web/patients/p1/settings", 200,
                                                                    open=True),
        ("GET", "/web/i18n/{language}.json"): lambda r: Case("GET", "/web/i18n/zh-Hans.json", 200, open=True),
        ("GET", "/web/vendor/{package}/{path:path}"): lambda r: Case("GET", "/web/vendor/uplot/package.json", 200,
                                                                     open=True),
        ("POST", "/api/v1/auth/token"): lambda r: Case("POST", "/api/v1/auth/token", 422, open=True),
        ("POST", "/api/v1/auth/refresh"): lambda r: Case("POST", "/api/v1/auth/refresh", 401, open=True,
                                                         json={"refresh_token": "nope"}),
        ("POST", "/api/v1/auth/logout"): lambda r: Case("POST", "/api/v1/auth/logout", 204, open=True,
                                                        json={"refresh_token": "nope"}),
        ("GET", "/api/v1/auth/me"): lambda r: Case("GET", "/api/v1/auth/me", 200),
        ("GET", "/api/v1/users"): lambda r: Case("GET", "/api/v1/users", **admin_only),
        ("POST", "/api/v1/users"): lambda r: Case(
            "POST", "/api/v1/users", **admin_made(201),
            json={"username": f"new{next(_unique)}", "role": "nurse", "password": "another long one"}),
        ("POST", "/api/v1/users/{username}/disable"): lambda r: Case("POST", "/api/v1/users/spare/disable",
                                                                     **admin_only),
        ("POST", "/api/v1/users/{username}/enable"): lambda r: Case("POST", "/api/v1/users/spare/enable",
                                                                    **admin_only),
        ("GET", "/api/v1/patients"): lambda r: Case("GET", "/api/v1/patients", 200, {"admin": 403}),
        ("GET", "/api/v1/patients/{patient}"): lambda r: Case("GET", "/api/v1/patients/p1", 404,
                                                              _each(OWN, 200), patient="p1"),
        ("GET", "/api/v1/patients/{patient}/vitals"): lambda r: Case(
            "GET", "/api/v1/patients/p1/vitals", 404, _each(OWN, 200), params={"metric": "spo2"}, patient="p1"),
        ("GET", "/api/v1/patients/{patient}/settings"): lambda r: Case(
            "GET", "/api/v1/patients/p1/settings", 404, {**_each(CLINICIANS, 200), "family": 403}, patient="p1"),
        ("PUT", "/api/v1/patients/{patient}/settings"): lambda r: Case(
            "PUT", "/api/v1/patients/p1/settings", 404, {**_each(CLINICIANS, 200), "family": 403}, patient="p1",
            json={"settings": {"targets": {"spo2": {"low": 88, "high": 92}}}, "reason": "COPD",
                  "expected_version": 0}),
        ("GET", "/api/v1/patients/{patient}/settings/history"): lambda r: Case(
            "GET", "/api/v1/patients/p1/settings/history", 404, {**_each(CLINICIANS, 200), "family": 403},
            patient="p1"),
        ("POST", "/api/v1/patients/{patient}/settings/preview"): lambda r: Case(
            "POST", "/api/v1/patients/p1/settings/preview", 404, {**_each(CLINICIANS, 200), "family": 403},
            patient="p1", json={"settings": {}, "days": 1}),
        ("GET", "/api/v1/alerts"): lambda r: Case("GET", "/api/v1/alerts", 200, {"admin": 403}),
        ("GET", "/api/v1/worklist"): lambda r: Case("GET", "/api/v1/worklist", 200, {"admin": 403}),
        ("GET", "/api/v1/patients/{patient}/series"): lambda r: Case(
            "GET", "/api/v1/patients/p1/series", 404, _each(OWN, 200), params={"metric": "spo2"}, patient="p1"),
        ("GET", "/api/v1/patients/{patient}/waveform"): lambda r: Case(
            "GET", "/api/v1/patients/p1/waveform", 404, _each(OWN, 200),
            params={"metric": "ecg", "around": "2024-05-01T11:00:00Z"}, patient="p1"),
        ("GET", "/api/v1/patients/{patient}/summary"): lambda r: Case(
            "GET", "/api/v1/patients/p1/summary", 404, _each(OWN, 200), patient="p1"),
        ("GET", "/api/v1/patients/{patient}/today"): lambda r: Case(
            "GET", "/api/v1/patients/p1/today", 404, _each(OWN, 200), patient="p1"),
        ("POST", "/api/v1/alerts/{alert_id}/ack"): lambda r: Case(
            "POST", "/api/v1/alerts/1/ack", 404,
            {**_each(CLINICIANS, 200), "family": 403, "admin": 403},
            patient="p1"),
        ("POST", "/api/v1/alerts/{alert_id}/seen"): lambda r: Case(
            "POST", "/api/v1/alerts/1/seen", 404, {**_each(OWN, 200), "admin": 403}, patient="p1"),
        ("GET", "/api/v1/alerts/{alert_id}"): lambda r: Case(
            "GET", "/api/v1/alerts/1", 404, {**_each(OWN, 200), "admin": 403}, patient="p1"),
        ("POST", "/api/v1/alerts/{alert_id}/resolve"): lambda r: Case(  # after ack and seen: it ends the alert
            "POST", "/api/v1/alerts/1/resolve", 404, {**_each(CLINICIANS, 200), "family": 403, "admin": 403},
            json={"reason": "actioned"}, patient="p1"),
        ("GET", "/api/v1/alerts/stream"): lambda r: Case("GET", "/api/v1/alerts/stream", 200, {"admin": 403},
                                                         stream=True),
        ("GET", "/api/v1/notifications"): lambda r: Case("GET", "/api/v1/notifications", 200, {"admin": 403}),
        ("POST", "/api/v1/silences"): lambda r: Case(
            "POST", "/api/v1/silences", 404, {**_each(CLINICIANS, 201), "family": 403, "admin": 403},
            json={"patient": "p1", "duration_min": 60, "reason": "admitted to hospital"}, patient="p1"),
        ("GET", "/api/v1/silences"): lambda r: Case(
            "GET", "/api/v1/silences", 200, _each(("admin", "family", "family_other"), 403)),
        ("DELETE", "/api/v1/silences/{silence_id}"): lambda r: Case(
            "DELETE", "/api/v1/silences/1", 404, {**_each(CLINICIANS, 200), "family": 403, "admin": 403},
            patient="p1"),
        ("GET", "/api/v1/gateways"): lambda r: Case(
            "GET", "/api/v1/gateways", 200, _each(("family", "family_other"), 403)),
        ("GET", "/api/v1/gateways/{gateway}"): lambda r: Case(
            "GET", "/api/v1/gateways/gw-old", 404, {**_each((*ADMINS, "doctor", "nurse"), 200),
                                                    "family": 403, "family_other": 403}),
        ("POST", "/api/v1/gateways/{gateway}/enrolment"): lambda r: Case(  # gw-old serves p1
            "POST", "/api/v1/gateways/gw-old/enrolment", 403,
            {**_each((*ADMINS, "doctor"), 201), "doctor_other": 404}, patient="p1"),
        ("POST", "/api/v1/enrol"): lambda r: Case("POST", "/api/v1/enrol", 404, open=True,
                                                  json={"code": "ABCD-EFGH-JK"}),
        ("GET", "/api/v1/ingest/stats"): lambda r: Case("GET", "/api/v1/ingest/stats", **admin_only),
        ("GET", "/api/v1/dead-letters"): lambda r: Case("GET", "/api/v1/dead-letters", **admin_only),
        ("GET", "/api/v1/audit"): lambda r: Case("GET", "/api/v1/audit", **admin_only),
        ("GET", "/api/v1/audit/verify"): lambda r: Case("GET", "/api/v1/audit/verify", **admin_only),
        ("GET", "/api/v1/registry/patients"): lambda r: Case("GET", "/api/v1/registry/patients", **admin_only),
        ("POST", "/api/v1/registry/patients"): lambda r: Case(
            "POST", "/api/v1/registry/patients", **admin_made(201),
            json={"id": f"new-{next(_unique)}", "display_name": "N", "conditions": ["copd"]}),
        ("PUT", "/api/v1/registry/patients/{patient_id}/care-team/{username}"): lambda r: Case(
            "PUT", "/api/v1/registry/patients/p3/care-team/spare", **admin_made(204), patient="p3"),
        ("DELETE", "/api/v1/registry/patients/{patient_id}/care-team/{username}"): lambda r: Case(
            "DELETE", "/api/v1/registry/patients/p3/care-team/spare", **admin_made(204), patient="p3"),
        ("PUT", "/api/v1/registry/patients/{patient_id}/family/{username}"): lambda r: Case(
            "PUT", "/api/v1/registry/patients/p3/family/spare.family", **admin_made(204), patient="p3"),
        ("DELETE", "/api/v1/registry/patients/{patient_id}/family/{username}"): lambda r: Case(
            "DELETE", "/api/v1/registry/patients/p3/family/spare.family", **admin_made(204), patient="p3"),
        ("GET", "/api/v1/registry/gateways"): lambda r: Case("GET", "/api/v1/registry/gateways", **admin_only),
        ("POST", "/api/v1/registry/gateways"): lambda r: Case(
            "POST", "/api/v1/registry/gateways", **admin_made(201),
            json={"id": f"gw-{next(_unique)}", "home": "h", "patients": ["p3"]}),
        ("POST", "/api/v1/registry/gateways/{gateway_id}/revoke"): lambda r: Case(
            "POST", "/api/v1/registry/gateways/gw-old/revoke", **admin_only),
        ("PUT", "/api/v1/registry/gateways/{gateway_id}/patients/{patient_id}"): lambda r: Case(
            "PUT", "/api/v1/registry/gateways/gw-old/patients/p3", **admin_made(204), patient="p3"),
        ("DELETE", "/api/v1/registry/gateways/{gateway_id}/patients/{patient_id}"): lambda r: Case(
            "DELETE", "/api/v1/registry/gateways/gw-old/patients/p3", **admin_made(204), patient="p3"),
        ("GET", "/api/v1/registry/devices"): lambda r: Case("GET", "/api/v1/registry/devices", **admin_only),
        # /fhir: the same policy (an admin on no care team reads no patient), errors as OperationOutcome.
        ("GET", "/fhir/metadata"): lambda r: Case("GET", "/fhir/metadata", 200, open=True),
        ("GET", "/fhir/Observation"): lambda r: Case(
            "GET", "/fhir/Observation", 404, {**_each(OWN, 200), "admin": 403}, params={"patient": "p1"},
            patient="p1"),
        ("GET", "/fhir/Patient/{id}"): lambda r: Case(
            "GET", "/fhir/Patient/p1", 404, {**_each(OWN, 200), "admin": 403}, patient="p1"),
        ("GET", "/fhir/Patient/{id}/$everything"): lambda r: Case(
            "GET", "/fhir/Patient/p1/$everything", 404, {**_each(OWN, 200), "admin": 403}, patient="p1"),
        ("GET", "/fhir/Device"): lambda r: Case(
            "GET", "/fhir/Device", 404, {**_each(OWN, 200), "admin": 403}, params={"patient": "p1"}, patient="p1"),
        ("GET", "/fhir/Device/{id}"): lambda r: Case(
            "GET", "/fhir/Device/dev-1", 404, {**_each(OWN, 200), "admin": 403}, patient="p1"),
        ("GET", "/fhir/DetectedIssue"): lambda r: Case(
            "GET", "/fhir/DetectedIssue", 404, {**_each(OWN, 200), "admin": 403}, params={"patient": "p1"},
            patient="p1"),
        ("POST", "/api/v1/registry/devices"): lambda r: Case(
            "POST", "/api/v1/registry/devices", **admin_made(201),
            json={"id": f"dev-{next(_unique)}", "patient": "p3"}),
    }


def _birth(gateway: str) -> bytes:
    return json.dumps({"gateway": gateway, "state": "online", "time": NOW.timestamp(), "connection": NOW.timestamp(),
                       "version": "1.0.0", "epoch": "ep1"}).encode()


async def _call(world: World, case: Case, headers: dict[str, str]) -> httpx.Response:
    if not case.stream:
        return await world.client.request(case.method, case.path, json=case.json, params=case.params,
                                          headers=headers)
    async with StreamCall(world.app, case.path, headers) as call:
        if call.status == 200:
            assert await call.chunk() == b"retry: 2000\n\n"
    return call.response()


def _alert(patient: str, start_s: int) -> AlertChange:
    return AlertChange(
        rule="spo2_low_sustained", patient=patient, metric="spo2", severity="high",
        episode_start_ns=T0 + start_s * S, fired_ns=T0 + (start_s + 60) * S, last_ns=T0 + (start_s + 90) * S,
        worst_value=84.0, threshold=90.0, message="low", state="open",
    )


@dataclass
class World:
    app: FastAPI
    security: SecurityContext
    client: httpx.AsyncClient
    headers: dict[str, dict[str, str]]


def _influx_handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/ping":
        return httpx.Response(204)
    return httpx.Response(200, json={"results": [{"statement_id": 0}]})


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    security = security_for(store, clock=lambda: NOW)
    for patient in ("p1", "p2", "p3"):
        security.registry.add_patient(Patient(patient, f"Patient {patient}"))
    security.registry.add_gateway(Gateway("gw-old", "old home", ("p1",)))
    security.registry.add_device(Device("dev-1", "p1", "gw-old", "generic.pulse_oximeter"))
    headers: dict[str, dict[str, str]] = {}
    for role, spec in ROLES.items():
        if spec is None:
            continue
        kind, care, family = spec
        add_user(security, role.replace("_", "."), kind, care=care, family=family)
        headers[role] = bearer(security, role.replace("_", "."))
    add_user(security, "spare", "doctor")
    add_user(security, "spare.family", "family")
    store.apply_alert_changes([_alert("p1", 0), _alert("p2", 600)])  # ids 1 (p1) and 2 (p2)
    store.add_silence("p1", rule=None, metric=None, starts_at=NOW, ends_at=NOW + dt.timedelta(hours=1),
                      reason="at the clinic", by="spare", at=NOW)  # id 1
    store.commit_ingest(IngestCommit(at=NOW, health=HealthUpdate([decode_status(_birth("gw-old"), "gw-old")], [],
                                                                  ())))
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(_influx_handler))
    app = create_app(store, influx, clock=lambda: NOW, security=security, registry=CollectorRegistry())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        yield World(app, security, client, headers)
    await influx.aclose()


async def test_every_route_has_a_case_and_a_policy(world: World) -> None:
    table = route_permissions(world.app)
    routes = {(method, path) for method, path, _ in table}
    assert routes == set(_cases()), f"routes without a case: {routes - set(_cases())}; gone: {set(_cases()) - routes}"
    for method, path, permission in table:
        web_shell = path == "/" or path.startswith("/web/")  # no data: the API calls they make carry the policy
        assert permission is not None or path in OPEN_ROUTES or web_shell, f"{method} {path} has no policy"


def test_a_route_without_a_policy_is_refused_when_the_app_is_built() -> None:
    from fastapi import APIRouter

    app = FastAPI()
    router = APIRouter()

    @router.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RuntimeError, match="GET /api/v1/forgotten"):
        check_routes(app)


@pytest.mark.parametrize("role", list(ROLES))
async def test_role_matrix(world: World, role: str) -> None:
    failures = []
    for make in _cases().values():
        case: Case = make(role)
        before = world.security.audit.head()[0]
        response = await _call(world, case, world.headers.get(role, {}))
        if response.status_code != case.status(role):
            failures.append(f"{case.method} {case.path}: {response.status_code} (expected {case.status(role)})")
            continue
        if response.status_code >= 400 and case.path.startswith("/fhir/"):
            assert response.json()["resourceType"] == "OperationOutcome", response.text
        elif response.status_code >= 400:
            assert set(response.json()) == {"error"} and set(response.json()["error"]) == {"code", "message"}
        if not case.path.startswith(("/api/v1/", "/fhir/")) or case.path in ("/api/v1/health", "/fhir/metadata"):
            continue
        rows = world.security.audit.entries(AuditQuery(limit=50))
        new = [row for row in rows if row.id > before]
        assert new, f"no audit row for {case.method} {case.path} as {role}"
        for row in new:
            assert row.target == f"{case.method} {case.path}" and row.status == response.status_code
            assert row.outcome == ("allowed" if response.status_code < 400 else
                                   "denied" if response.status_code in (401, 403, 404, 429) else "failed")
            if role != "anon" and not case.open:
                assert row.actor == role.replace("_", ".")
        # A role refused before the patient is known (403 by role) has no patient to name.
        if case.patient is not None and role != "anon" and response.status_code != 403:
            assert {row.patient for row in new} == {case.patient}, (case.path, role)
    assert not failures, failures
    assert world.security.audit.verify().ok


@pytest.mark.parametrize(("role", "patients"), [("doctor", {"p1"}), ("family", {"p1"}), ("doctor_other", {"p2"}),
                                                ("family_other", {"p2"}), ("admin_care", {"p1"})])
async def test_lists_hold_only_the_callers_patients(world: World, role: str, patients: set[str]) -> None:
    alerts = (await world.client.get("/api/v1/alerts", headers=world.headers[role])).json()
    assert {alert["patient"] for alert in alerts} == patients
    listed = (await world.client.get("/api/v1/patients", headers=world.headers[role])).json()
    assert {patient["id"] for patient in listed} == patients
    other = "p2" if patients == {"p1"} else "p1"
    refused = await world.client.get("/api/v1/alerts", params={"patient": other}, headers=world.headers[role])
    assert refused.status_code == 404
    # Reading the alerts list is audited once per patient whose alerts were returned.
    rows = world.security.audit.entries(AuditQuery(action="alerts.read", outcome="allowed", limit=10))
    assert {row.patient for row in rows} == patients


async def test_a_patient_outside_the_care_list_looks_like_no_patient(world: World) -> None:
    doctor = world.headers["doctor"]
    unassigned = await world.client.get("/api/v1/patients/p2/vitals", params={"metric": "spo2"}, headers=doctor)
    missing = await world.client.get("/api/v1/patients/nobody/vitals", params={"metric": "spo2"}, headers=doctor)
    assert unassigned.status_code == missing.status_code == 404
    assert unassigned.json() == missing.json()


async def test_acknowledging_is_in_the_callers_own_name_and_family_may_only_mark_seen(world: World) -> None:
    refused = await world.client.post("/api/v1/alerts/1/ack", headers=world.headers["family"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    [row] = world.security.audit.entries(AuditQuery(limit=1))
    assert (row.actor, row.patient, row.action, row.outcome) == ("family", "p1", "alerts.ack", "denied")
    seen = await world.client.post("/api/v1/alerts/1/seen", headers=world.headers["family"])
    assert (seen.status_code, seen.json()["seen_by"]) == (200, "family")
    acked = await world.client.post("/api/v1/alerts/1/ack", headers=world.headers["nurse"])
    assert acked.json()["acknowledged_by"] == "nurse"


async def test_admin_changes_to_the_registry_take_effect(world: World) -> None:
    admin = world.headers["admin"]
    added = await world.client.put("/api/v1/registry/patients/p2/care-team/doctor", headers=admin)
    assert added.status_code == 204
    doctor = bearer(world.security, "doctor")
    assert (await world.client.get("/api/v1/patients/p2", headers=doctor)).status_code == 200
    family_on_team = await world.client.put("/api/v1/registry/patients/p2/care-team/family", headers=admin)
    assert family_on_team.status_code == 422
    unknown = await world.client.put("/api/v1/registry/patients/p9/care-team/doctor", headers=admin)
    assert unknown.status_code == 404
    duplicate = await world.client.post("/api/v1/registry/gateways", json={"id": "gw-old", "home": "x"},
                                        headers=admin)
    assert duplicate.status_code == 409


@given(st.sampled_from(list(Role)), st.none() | st.sampled_from(list(Relation)), st.sampled_from(list(Permission)))
def test_the_policy_invariants(role: Role, relation: Relation | None, permission: Permission) -> None:
    allowed = decide(role, relation, permission)
    if permission in PATIENT_PERMISSIONS:
        assert not allowed or relation is not None  # no role reads a patient without a relation to them
        if relation is Relation.FAMILY:  # family reads and marks seen; never acks, resolves, silences or
            # reads or changes the clinical settings
            assert allowed == (permission not in {Permission.ACK_ALERT, Permission.RESOLVE_ALERT,
                                                  Permission.SILENCE_ALERTS, Permission.READ_SETTINGS,
                                                  Permission.CHANGE_SETTINGS})
        if relation is Relation.CARE:
            assert allowed
    elif permission in ROLE_OR_RELATION_PERMISSIONS:  # gateways: an admin reads all, a care team its patients'
        assert allowed == (role is Role.ADMIN or relation is Relation.CARE)
    elif permission in CARE_DOCTOR_PERMISSIONS:  # enrolment: an admin, or a doctor treating the patient
        assert allowed == (role is Role.ADMIN or (role is Role.DOCTOR and relation is Relation.CARE))
    else:
        assert allowed == (role is Role.ADMIN or permission is Permission.READ_SELF)
