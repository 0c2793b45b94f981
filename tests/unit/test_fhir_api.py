"""``/fhir`` over the API's policy: who reads what, OperationOutcome for every error, the media type, audit rows,
and every resource it serves parses with the R4B models. (Paging over real data: tests/integration/test_fhir.py.)"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cloud.api import create_app
from cloud.audit import AuditQuery
from cloud.auth.policy import SecurityContext
from cloud.registry import Device, Gateway, Patient
from cloud.rules import AlertChange
from cloud.store import Store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, security_for
from tests.fhir_helpers import parse_all, parse_ndjson, parse_resource

S = 10**9
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
T0 = int(NOW.timestamp()) * S - 3600 * S


def _influx(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/query":
        statement = request.url.params.get("q", "")
        if '"vitals"' in statement:
            rows = [[T0, 132.0, 0, "bp_systolic", "cuff-1"], [T0, 82.0, 0, "bp_diastolic", "cuff-1"],
                    [T0 + S, 97.0, 2, "spo2", "ox-1"]]
            series = [{"name": "vitals", "columns": ["time", "value", "quality", "metric", "device"], "values": rows}]
            return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series}]})
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})
    return httpx.Response(204)


@dataclass
class World:
    client: httpx.AsyncClient
    security: SecurityContext
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    security = security_for(store, clock=lambda: NOW)
    security.registry.add_patient(Patient("p1", "Ann Example", dt.date(1950, 2, 3)))
    security.registry.add_patient(Patient("p_2", "Bob Example"))
    security.registry.add_gateway(Gateway("gw-1", "home", ("p1",)))
    security.registry.add_device(Device("cuff-1", "p1", "gw-1", "generic.bp_cuff"))
    security.registry.add_device(Device("ox_2", "p_2", None, "generic.pulse_oximeter"))
    roles = {"doctor": ("doctor", ["p1"], []), "doctor.other": ("doctor", ["p_2"], []),
             "family": ("family", [], ["p1"]), "admin": ("admin", [], [])}
    for name, (role, care, family) in roles.items():
        add_user(security, name, role, care=care, family=family)
    store.apply_alert_changes([AlertChange(
        rule="spo2_low_sustained", patient="p1", metric="spo2", severity="urgent", episode_start_ns=T0,
        fired_ns=T0 + 60 * S, last_ns=T0 + 90 * S, worst_value=84.0, threshold=90.0, message="low", state="open")])
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(_influx))
    app = create_app(store, influx, clock=lambda: NOW, security=security)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ehr.test") as client:
        yield World(client, security, {name: bearer(security, name) for name in roles})
    await influx.aclose()


def _outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    parse_resource(body)
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
    return body


async def test_metadata_needs_no_token_and_is_a_capability_statement(world: World) -> None:
    response = await world.client.get("/fhir/metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    model = parse_resource(response.json())
    assert model.fhirVersion == "4.0.1"
    assert {r.type for r in model.rest[0].resource} == {"Observation", "Patient", "Device", "DetectedIssue"}


async def test_observations_of_an_own_patient_parse_and_pair_blood_pressure(world: World) -> None:
    for who in ("doctor", "family"):
        response = await world.client.get("/fhir/Observation", params={"patient": "Patient/p1", "_count": "10"},
                                          headers=world.headers[who])
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
        bundle = response.json()
        parse_resource(bundle)
        resources = [entry["resource"] for entry in bundle["entry"]]
        assert [r["code"]["coding"][0]["code"] for r in resources] == ["85354-9", "59408-5"]
        assert bundle["link"][0]["relation"] == "self" and len(bundle["link"]) == 1
    rows = world.security.audit.entries(AuditQuery(actor="family", limit=5))
    assert rows[0].patient == "p1" and rows[0].action == "vitals.read" and rows[0].target == "GET /fhir/Observation"


@pytest.mark.parametrize(("who", "path", "params"), [
    ("doctor.other", "/fhir/Observation", {"patient": "p1"}),
    ("doctor", "/fhir/Observation", {"patient": "p_2"}),
    ("doctor", "/fhir/Observation", {"patient": "nobody"}),
    ("family", "/fhir/Patient/p_2", None),
    ("doctor", "/fhir/Device", {"patient": "p_2"}),
    ("doctor", "/fhir/Device/ox_2", None),
    ("doctor.other", "/fhir/DetectedIssue", {"patient": "p1"}),
    ("doctor.other", "/fhir/Patient/p1/$everything", None),
])
async def test_a_patient_outside_the_care_list_is_404_operation_outcome(world: World, who: str, path: str,
                                                                        params: dict[str, str] | None) -> None:
    response = await world.client.get(path, params=params, headers=world.headers[who])
    _outcome(response, 404)
    [row] = world.security.audit.entries(AuditQuery(limit=1))
    assert (row.actor, row.outcome, row.status) == (who, "denied", 404)


async def test_refusals_and_bad_requests_are_operation_outcomes(world: World) -> None:
    unsigned = await world.client.get("/fhir/Observation", params={"patient": "p1"})
    assert _outcome(unsigned, 401)["issue"][0]["code"] == "login"
    assert unsigned.headers["www-authenticate"] == "Bearer"
    _outcome(await world.client.get("/fhir/Observation", params={"patient": "p1"}, headers=world.headers["admin"]),
             403)
    doctor = world.headers["doctor"]
    _outcome(await world.client.get("/fhir/Observation", headers=doctor), 400)
    _outcome(await world.client.get("/fhir/Observation", params={"patient": "p1", "date": "gt2024-99"},
                                    headers=doctor), 400)
    _outcome(await world.client.get("/fhir/Observation", params={"patient": "p1", "_count": "0"}, headers=doctor),
             422)
    _outcome(await world.client.get("/fhir/Observation", params={"patient": "p1", "code": "ecg,spo2"},
                                    headers=doctor), 400)
    _outcome(await world.client.get("/fhir/Medication", headers=doctor), 404)


async def test_patient_devices_and_alerts(world: World) -> None:
    doctor = world.headers["doctor"]
    patient = (await world.client.get("/fhir/Patient/p1", headers=doctor)).json()
    assert parse_resource(patient).birthDate == dt.date(1950, 2, 3)
    devices = (await world.client.get("/fhir/Device", params={"patient": "p1"}, headers=doctor)).json()
    parse_resource(devices)
    by_id = {entry["resource"]["id"]: entry["resource"] for entry in devices["entry"]}
    assert by_id["cuff-1"]["parent"] == {"reference": "Device/gw-1"} and "gw-1" in by_id
    assert (await world.client.get("/fhir/Device/gw-1", headers=doctor)).json()["id"] == "gw-1"
    issues = (await world.client.get("/fhir/DetectedIssue", params={"patient": "p1"}, headers=doctor)).json()
    parse_resource(issues)
    assert [e["resource"]["severity"] for e in issues["entry"]] == ["high"]
    # A patient id FHIR does not allow as an id is found again by its FHIR id.
    other = world.headers["doctor.other"]
    listed = (await world.client.get("/fhir/Device", params={"patient": "p_2"}, headers=other)).json()
    reference = listed["entry"][0]["resource"]["patient"]["reference"]
    fetched = await world.client.get(f"/fhir/{reference}", headers=other)
    assert fetched.status_code == 200 and fetched.json()["identifier"][0]["value"] == "p_2"


async def test_everything_streams_a_transaction_bundle_or_ndjson(world: World) -> None:
    family = world.headers["family"]
    response = await world.client.get("/fhir/Patient/p1/$everything", params={"start": "2024-05-01"},
                                      headers=family)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    bundle = json.loads(response.text)
    parse_resource(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds == ["Patient", "Device", "Device", "Observation", "Observation", "Device", "DetectedIssue"]
    assert all(entry["request"]["method"] == "PUT" for entry in bundle["entry"])
    ndjson = await world.client.get("/fhir/Patient/p1/$everything",
                                    params={"_outputFormat": "application/fhir+ndjson"}, headers=family)
    assert ndjson.headers["content-type"].startswith("application/fhir+ndjson")
    assert [r["resourceType"] for r in parse_ndjson(ndjson.text)] == kinds
    parse_all(entry["resource"] for entry in bundle["entry"])
