"""The secure profile against the real servers: Mosquitto with TLS only, accounts and ACLs kept by its
dynamic-security plugin, influxd with users; checked with ``mosquitto_pub``/``mosquitto_sub`` as any client would."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from cloud.auth import Role
from cloud.broker import BrokerAccounts, BrokerAccountsError, GatewayCredentials
from cloud.registry import Gateway
from cloud.service import CloudConfig, CloudService
from tests.auth_helpers import bearer
from vitalbridge.demo import DemoOptions, run_demo
from vitalbridge.stack import LocalStack
from vitalbridge.stack._mosquitto import mqtt_connack

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("secure") / "stack", secure=True).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def accounts(secure: LocalStack) -> BrokerAccounts:
    return secure.broker_accounts()


def _connection(stack: LocalStack, user: tuple[str, str] | None) -> list[str]:
    assert stack.mosquitto is not None
    args = ["-h", "127.0.0.1", "-p", str(stack.mosquitto.port), "--cafile", str(stack.ca_file), "-V", "mqttv5"]
    if user is not None:
        args += ["-u", user[0], "-P", user[1]]
    return args


def _pub(stack: LocalStack, user: tuple[str, str] | None, topic: str, message: str,
         *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mosquitto_pub", *_connection(stack, user), "-q", "1", "-t", topic, "-m", message, *extra],
                          capture_output=True, text=True, timeout=20, check=False)


def _sub(stack: LocalStack, user: tuple[str, str] | None, topic: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["mosquitto_sub", *_connection(stack, user), "-q", "1", "-t", topic, "-v", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate()  # reaps it and closes its pipes


def _user(credentials: GatewayCredentials) -> tuple[str, str]:
    return credentials.username, credentials.password


def _wait_subscribed() -> None:
    time.sleep(0.7)  # mosquitto_sub prints nothing when its subscription is granted


def test_plain_tcp_is_refused(secure: LocalStack) -> None:
    assert secure.mosquitto is not None
    assert secure.mqtt_url.startswith("mqtts://")
    assert not mqtt_connack("127.0.0.1", secure.mosquitto.port, any_answer=True)  # no plain listener answers
    assert mqtt_connack("127.0.0.1", secure.mosquitto.port, tls=secure.mosquitto.security.client_context(),
                        any_answer=True) if secure.mosquitto.security else False
    completed = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(secure.mosquitto.port), "-t", "x",
                                "-m", "plain", "-u", "u", "-P", "p"], capture_output=True, text=True, timeout=20,
                               check=False)
    assert completed.returncode != 0


def test_anonymous_clients_are_refused(secure: LocalStack) -> None:
    assert secure.mosquitto is not None
    assert not mqtt_connack("127.0.0.1", secure.mosquitto.port, tls=secure.mosquitto.security.client_context()) \
        if secure.mosquitto.security else False
    completed = _pub(secure, None, "vb/v1/anyone/data", "anonymous")
    assert completed.returncode != 0
    assert "not authori" in (completed.stderr + completed.stdout).lower()


def test_a_wrong_password_is_refused(secure: LocalStack, accounts: BrokerAccounts) -> None:
    accounts.add_gateway("gw-wrong")
    completed = _pub(secure, ("gw-wrong", "not-its-password"), "vb/v1/gw-wrong/data", "x")
    assert completed.returncode != 0


def test_a_gateway_cannot_publish_on_another_gateways_topic(secure: LocalStack, accounts: BrokerAccounts) -> None:
    a, b = accounts.add_gateway("gw-a"), accounts.add_gateway("gw-b")
    listener = _sub(secure, secure.ingest_credentials(), "vb/v1/+/data", "-C", "1", "-W", "15")
    try:
        _wait_subscribed()
        # First a forgery for gw-b, then gw-a's own message: the first delivered must be gw-a's.
        forged = _pub(secure, _user(a), "vb/v1/gw-b/data", "forged by gw-a")
        own = _pub(secure, _user(a), "vb/v1/gw-a/data", "from gw-a")
        assert own.returncode == 0, own.stderr
        out, err = listener.communicate(timeout=20)
    finally:
        _stop(listener)
    assert out.strip() == "vb/v1/gw-a/data from gw-a", (out, err, forged.stderr)
    assert "forged" not in out
    assert b.username == "gw-b"


def test_a_gateway_reads_only_its_own_commands(secure: LocalStack, accounts: BrokerAccounts) -> None:
    a = accounts.add_gateway("gw-c")
    accounts.add_gateway("gw-d")
    foreign = _sub(secure, _user(a), "vb/v1/gw-d/cmd/#", "-C", "1", "-W", "4")
    own = _sub(secure, _user(a), "vb/v1/gw-c/cmd/#", "-C", "1", "-W", "15")
    try:
        _wait_subscribed()
        ingest = secure.ingest_credentials()
        assert _pub(secure, ingest, "vb/v1/gw-d/cmd/ack", "for gw-d").returncode == 0
        assert _pub(secure, ingest, "vb/v1/gw-c/cmd/ack", "for gw-c").returncode == 0
        own_out, _ = own.communicate(timeout=20)
        foreign_out, _ = foreign.communicate(timeout=20)
    finally:
        _stop(own)
        _stop(foreign)
    assert own_out.strip() == "vb/v1/gw-c/cmd/ack for gw-c"
    assert foreign_out == ""
    # Nor may a gateway write commands, nor read other gateways' data.
    spy = _sub(secure, _user(a), "vb/v1/+/data", "-C", "1", "-W", "4")
    try:
        _wait_subscribed()
        assert _pub(secure, secure.ingest_credentials(), "vb/v1/gw-c/cmd/config", "x").returncode == 0
        gw_d = accounts.add_gateway("gw-d")  # a new password: the old one stops working
        assert _pub(secure, _user(gw_d), "vb/v1/gw-d/data", "private").returncode == 0
        spy_out, _ = spy.communicate(timeout=20)
    finally:
        _stop(spy)
    assert spy_out == ""


def test_rotating_a_password_refuses_the_old_one(secure: LocalStack, accounts: BrokerAccounts) -> None:
    old = accounts.add_gateway("gw-rot")
    new = accounts.add_gateway("gw-rot")
    assert new.password != old.password
    assert _pub(secure, _user(old), "vb/v1/gw-rot/data", "x").returncode != 0
    assert _pub(secure, _user(new), "vb/v1/gw-rot/data", "x").returncode == 0


def test_a_revoked_gateway_is_disconnected_and_refused(secure: LocalStack, accounts: BrokerAccounts) -> None:
    gateway = accounts.add_gateway("gw-rev")
    connected = _sub(secure, _user(gateway), "vb/v1/gw-rev/cmd/#")
    try:
        _wait_subscribed()
        assert connected.poll() is None  # connected and waiting
        accounts.revoke_gateway("gw-rev")
        # The broker disconnects it at once (mosquitto_sub then ends instead of waiting for messages).
        connected.wait(timeout=15)
    finally:
        _stop(connected)
    assert connected.returncode is not None
    assert _pub(secure, _user(gateway), "vb/v1/gw-rev/data", "after revocation").returncode != 0
    accounts.revoke_gateway("gw-rev")  # again: nothing left to do, not an error


async def test_revoking_in_the_registry_cuts_the_broker_account(secure: LocalStack, accounts: BrokerAccounts,
                                                               tmp_path: Path) -> None:
    secure.add_influx_database("revoke_test")
    writer, reader = secure.influx_accounts.writer, secure.influx_accounts.reader
    config = CloudConfig(mqtt_url=secure.mqtt_url, influx_url=secure.influx_url, influx_db="revoke_test",
                         database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=0,
                         auth_secret=SecretStr(secrets.token_hex(32)), broker_pki_dir=str(secure.pki_dir),
                         influx_username=writer[0], influx_password=SecretStr(writer[1]),
                         influx_read_username=reader[0], influx_read_password=SecretStr(reader[1]))
    cloud = CloudService(config, ingest=False)
    await cloud.start()
    try:
        assert cloud.security is not None and cloud.security.on_gateway_revoked is not None
        cloud.security.registry.add_gateway(Gateway("gw-api", "home", ()))
        cloud.security.identity.add_user("root.admin", Role.ADMIN, "a long admin password",
                                         now=dt.datetime.now(dt.UTC))
        gateway = await asyncio.to_thread(accounts.add_gateway, "gw-api")
        assert (await asyncio.to_thread(_pub, secure, _user(gateway), "vb/v1/gw-api/data", "x")).returncode == 0
        async with httpx.AsyncClient(base_url=cloud.api_url) as client:
            response = await client.post("/api/v1/registry/gateways/gw-api/revoke",
                                         headers=bearer(cloud.security, "root.admin"))
        assert response.status_code == 200, response.text
        assert response.json()["revoked"] is True
        assert (await asyncio.to_thread(_pub, secure, _user(gateway), "vb/v1/gw-api/data", "x")).returncode != 0
    finally:
        await cloud.stop()


def test_accounts_need_a_reachable_broker(secure: LocalStack, tmp_path: Path) -> None:
    with pytest.raises(BrokerAccountsError, match="does not exist"):
        BrokerAccounts(tmp_path, secure.mqtt_url)
    assert secure.mosquitto is not None
    closed = BrokerAccounts(secure.pki_dir, "mqtts://127.0.0.1:1", timeout_s=2)
    with pytest.raises(BrokerAccountsError, match="cannot reach the broker"):
        closed.add_gateway("gw-x")
    with pytest.raises(BrokerAccountsError, match="not a valid identifier"):
        closed.add_gateway("a/+")
    assert "BEGIN CERTIFICATE" in closed.ca_pem()


def test_influxdb_refuses_anonymous_and_the_readers_writes(secure: LocalStack) -> None:
    secure.add_influx_database("secure_test")
    accounts = secure.influx_accounts
    line = b"vitals,patient=p1,metric=spo2 value=97 1700000000000000000"
    url = f"{secure.influx_url}/write"
    params = {"db": "secure_test", "precision": "ns"}
    assert httpx.post(url, params=params, content=line, timeout=10).status_code == 401
    assert httpx.post(url, params=params, content=line, auth=accounts.reader, timeout=10).status_code == 403
    assert httpx.post(url, params=params, content=line, auth=accounts.writer, timeout=10).status_code == 204
    query = {"db": "secure_test", "q": 'SELECT count("value") FROM "vitals"'}
    assert httpx.get(f"{secure.influx_url}/query", params=query, timeout=10).status_code == 401
    read = httpx.get(f"{secure.influx_url}/query", params=query, auth=accounts.reader, timeout=10)
    assert read.status_code == 200 and read.json()["results"][0]["series"][0]["values"][0][1] == 1
    # The writer may not read back, nor may either make a database.
    denied = httpx.get(f"{secure.influx_url}/query", params=query, auth=accounts.writer, timeout=10)
    assert denied.status_code == 403 or "error" in denied.json()["results"][0]
    create = httpx.post(f"{secure.influx_url}/query", data={"q": "CREATE DATABASE other"}, auth=accounts.reader,
                        timeout=10)
    assert create.status_code == 403


@pytest.mark.slow
async def test_the_secure_demo_stores_what_its_gateway_publishes_through_tls(tmp_path: Path) -> None:
    options = DemoOptions(duration_s=15.0, history_s=1800.0, speed=480.0, run_dir=tmp_path)
    lines: list[str] = []
    result = await run_demo(options, announce=lines.append)
    assert result.published > 100
    assert result.stored == result.published
    assert any("secure profile" in line for line in lines)
    assert any(line.strip().startswith("doctor login: demo.doctor / ") for line in lines)
    assert any(line.strip().startswith("family login: demo.family / ") for line in lines)
    assert any("broker mqtts://" in line for line in lines)
