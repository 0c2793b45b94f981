"""Enrolment over HTTP: who may make a code, and what a gateway gets for one (and the plain refusals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from cloud.api import create_app
from cloud.audit import AuditQuery
from cloud.auth import ThrottlePolicy
from cloud.auth.policy import SecurityContext
from cloud.enrolment import BrokerAccounts, Enrolment, EnrolmentCodes
from cloud.registry import Gateway
from cloud.store import Store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, security_for

START = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Credentials:
    gateway: str
    username: str
    password: str


@dataclass
class FakeAccounts:
    """Stands in for the broker's account keeper: records what it was asked, fails on demand."""

    added: list[str] = field(default_factory=list)
    fail: bool = False

    def add_gateway(self, gateway: str) -> Credentials:
        if self.fail:
            raise OSError("the broker's password file is read-only")
        self.added.append(gateway)
        return Credentials(gateway, gateway, f"secret-of-{gateway}")

    def revoke_gateway(self, gateway: str) -> None:
        if gateway in self.added:
            self.added.remove(gateway)

    def ca_pem(self) -> str:
        return "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@dataclass
class World:
    client: httpx.AsyncClient
    security: SecurityContext
    accounts: FakeAccounts
    clock: list[dt.datetime]
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = [START]
    security = security_for(store, clock=lambda: clock[0])
    for name, role, care, family in (("root", "admin", (), ()), ("dr.one", "doctor", ("p1",), ()),
                                     ("dr.both", "doctor", ("p1", "p2"), ()), ("nurse", "nurse", ("p1", "p2"), ()),
                                     ("fam", "family", (), ("p1",)), ("dr.other", "doctor", ("p3",), ())):
        add_user(security, name, role, care=care, family=family)
    security.registry.add_gateway(Gateway("gw-home", "the Smiths", ("p1", "p2")))
    security.registry.add_gateway(Gateway("gw-solo", "Mrs Jones", ("p1",)))
    accounts = FakeAccounts()
    _typed: BrokerAccounts = accounts  # the fake keeps the interface the real keeper implements
    enrolment = Enrolment(EnrolmentCodes(store.engine, throttle=ThrottlePolicy(address_failures=4)),
                          broker_url="mqtts://broker.example.org:8883", accounts=accounts)
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    app = create_app(store, influx, clock=lambda: clock[0], security=security, enrolment=enrolment)
    headers = {name: bearer(security, name) for name in ("root", "dr.one", "dr.both", "nurse", "fam", "dr.other")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        yield World(client, security, accounts, clock, headers)
    await influx.aclose()


async def _issue(world: World, gateway: str = "gw-home", who: str = "root") -> httpx.Response:
    return await world.client.post(f"/api/v1/gateways/{gateway}/enrolment", headers=world.headers[who])


@pytest.mark.parametrize(("who", "gateway", "status"), [
    ("root", "gw-home", 201), ("dr.both", "gw-home", 201), ("dr.one", "gw-solo", 201),
    ("dr.one", "gw-home", 403),  # on the care team of one of its two patients
    ("nurse", "gw-home", 403), ("fam", "gw-home", 403),
    ("dr.other", "gw-home", 404),  # none of its patients: as if it did not exist
    ("root", "gw-none", 404), ("dr.both", "gw-none", 404),
])
async def test_who_may_make_a_code(world: World, who: str, gateway: str, status: int) -> None:
    response = await _issue(world, gateway, who)
    assert response.status_code == status, response.text
    if status == 201:
        body = response.json()
        assert body["gateway"] == gateway and len(body["code"]) == 12
        assert dt.datetime.fromisoformat(body["expires_at"]) == START + dt.timedelta(hours=24)
    else:
        assert set(response.json()["error"]) == {"code", "message"}
    assert (await world.client.post(f"/api/v1/gateways/{gateway}/enrolment")).status_code == 401


async def test_a_gateway_trades_its_code_once_for_identity_broker_and_login(world: World) -> None:
    code = (await _issue(world, who="dr.both")).json()["code"]
    enrolled = await world.client.post("/api/v1/enrol", json={"code": code.lower().replace("-", " ")})
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json() == {
        "gateway": "gw-home", "patients": ["p1", "p2"], "broker_url": "mqtts://broker.example.org:8883",
        "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "credentials": {"username": "gw-home", "password": "secret-of-gw-home"}}
    assert world.accounts.added == ["gw-home"]
    again = await world.client.post("/api/v1/enrol", json={"code": code})
    assert again.status_code == 409 and again.json()["error"]["code"] == "used_code"
    assert "used already" in again.json()["error"]["message"]
    # Both audited; the code is in no row.
    issued = world.security.audit.entries(AuditQuery(action="gateways.enrol", limit=10))
    assert {(row.actor, row.patient, row.outcome) for row in issued} == {("dr.both", "p1", "allowed"),
                                                                         ("dr.both", "p2", "allowed")}
    taken = world.security.audit.entries(AuditQuery(action="gateways.enrolled", limit=10))
    assert {(row.actor, row.role, row.patient, row.status) for row in taken} == {
        ("gw-home", "gateway", "p1", 200), ("gw-home", "gateway", "p2", 200), (None, None, None, 409)}
    assert not any(code.replace("-", "") in f"{row.target}{row.actor}" for row in issued + taken)


async def test_expired_wrong_and_malformed_codes_are_told_apart(world: World) -> None:
    code = (await _issue(world)).json()["code"]
    world.clock[0] = START + dt.timedelta(hours=24, seconds=1)
    expired = await world.client.post("/api/v1/enrol", json={"code": code})
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "expired_code"
    wrong = await world.client.post("/api/v1/enrol", json={"code": "ABCD-EFGH-JK"})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "wrong_code"
    look_alike = await world.client.post("/api/v1/enrol", json={"code": "ABCD-EFGH-J0"})
    assert look_alike.status_code == 404 and "never contain O or 0" in look_alike.json()["error"]["message"]
    empty = await world.client.post("/api/v1/enrol", json={})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid"
    assert world.accounts.added == []


async def test_wrong_codes_are_throttled(world: World) -> None:
    code = (await _issue(world)).json()["code"]
    for _ in range(4):
        assert (await world.client.post("/api/v1/enrol", json={"code": "ABCD-EFGH-JK"})).status_code == 404
    locked = await world.client.post("/api/v1/enrol", json={"code": code})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "throttled"
    assert int(locked.headers["Retry-After"]) == 15 * 60
    world.clock[0] = START + dt.timedelta(minutes=16)
    assert (await world.client.post("/api/v1/enrol", json={"code": code})).status_code == 200


async def test_a_broker_failure_leaves_the_code_usable(world: World) -> None:
    code = (await _issue(world)).json()["code"]
    world.accounts.fail = True
    failed = await world.client.post("/api/v1/enrol", json={"code": code})
    assert failed.status_code == 503 and "try again" in failed.json()["error"]["message"]
    world.accounts.fail = False
    assert (await world.client.post("/api/v1/enrol", json={"code": code})).status_code == 200


async def test_a_revoked_gateway_gets_no_code_and_cannot_spend_one(world: World) -> None:
    code = (await _issue(world)).json()["code"]
    world.security.registry.revoke_gateway("gw-home")
    assert (await _issue(world)).json()["error"]["code"] == "gateway_revoked"
    refused = await world.client.post("/api/v1/enrol", json={"code": code})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "gateway_revoked"


async def test_without_broker_accounts_the_login_is_null(store: Store) -> None:
    security = security_for(store, clock=lambda: START)
    add_user(security, "root", "admin")
    security.registry.add_gateway(Gateway("gw-open", "h", ()))
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    app = create_app(store, influx, clock=lambda: START, security=security,
                     enrolment=Enrolment(EnrolmentCodes(store.engine, ttl=dt.timedelta(hours=2)),
                                         broker_url="mqtt://127.0.0.1:1883"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        issued = await client.post("/api/v1/gateways/gw-open/enrolment", headers=bearer(security, "root"))
        assert dt.datetime.fromisoformat(issued.json()["expires_at"]) == START + dt.timedelta(hours=2)
        enrolled = (await client.post("/api/v1/enrol", json={"code": issued.json()["code"]})).json()
    await influx.aclose()
    assert enrolled == {"gateway": "gw-open", "patients": [], "broker_url": "mqtt://127.0.0.1:1883", "ca_pem": None,
                        "credentials": None}


def test_gateways_are_given_the_broker_address_never_the_ingest_login() -> None:
    from cloud.service import CloudConfig, ConfigError

    config = CloudConfig.from_env({"VB_MQTT_URL": "mqtts://ingest:secret@broker.internal:8883"})
    assert config.gateway_broker_url() == "mqtts://broker.internal:8883"
    public = CloudConfig.from_env({"VB_GATEWAY_MQTT_URL": "mqtts://broker.example.org:8883",
                                   "VB_ENROLMENT_CODE_HOURS": "2"})
    assert (public.gateway_broker_url(), public.enrolment_code_hours) == ("mqtts://broker.example.org:8883", 2.0)
    with pytest.raises(ConfigError, match=r"VB_GATEWAY_MQTT_URL.*must not carry a password"):
        CloudConfig.from_env({"VB_GATEWAY_MQTT_URL": "mqtts://gw:pw@broker.example.org:8883"})


async def test_revoking_a_gateway_removes_its_broker_login(world: World) -> None:
    code = (await _issue(world)).json()["code"]
    assert (await world.client.post("/api/v1/enrol", json={"code": code})).status_code == 200
    assert world.accounts.added == ["gw-home"]
    revoked = await world.client.post("/api/v1/registry/gateways/gw-home/revoke", headers=world.headers["root"])
    assert revoked.status_code == 200 and revoked.json()["revoked"]
    assert world.accounts.added == []
