"""Enrolment end to end, as a family would do it: a doctor makes a code through the real API (uvicorn on a
loopback port), `vitalbridge edge enroll` trades it (a real process), the gateway is paired with a virtual
oximeter and `vitalbridge edge run` sends through the real Mosquitto (TLS, with its own broker account from
the enrolment) into the real influxd, with the registry enforced. A used, a wrong and an expired code each
get their plain message and a non-zero exit."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from cloud.auth import Role
from cloud.enrolment import EnrolmentCodes
from cloud.registry import Gateway, Patient
from cloud.service import CloudConfig, CloudService
from tests.auth_helpers import PASSWORD, add_user
from tests.integration.helpers import count_points, wait_for
from vitalbridge.stack import LocalStack, free_port

pytestmark = pytest.mark.integration

@pytest.fixture
async def cloud_service(tmp_path: Path, unique_name: Callable[[str], str]) -> AsyncIterator[CloudService]:
    """The cloud on the stack's secure profile: Mosquitto over TLS with dynamic-security accounts (enrolment
    makes the gateway's), InfluxDB with users."""
    stack = LocalStack(tmp_path / "stack", secure=True).start()
    try:
        database = unique_name("vbenrol")
        stack.add_influx_database(database)
        writer, reader = stack.influx_accounts.writer, stack.influx_accounts.reader
        ingest_user, ingest_password = stack.ingest_credentials()
        config = CloudConfig(
            mqtt_url=stack.mqtt_url, mqtt_ca_file=str(stack.ca_file), mqtt_username=ingest_user,
            mqtt_password=SecretStr(ingest_password), influx_url=stack.influx_url, influx_db=database,
            influx_username=writer[0], influx_password=SecretStr(writer[1]), influx_read_username=reader[0],
            influx_read_password=SecretStr(reader[1]), broker_pki_dir=str(stack.pki_dir),
            database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=free_port(),
            client_id=unique_name("ingest-"), registry="enforce", registry_cache_s=0.2, auth_secret="s" * 32,
            shared_group=unique_name("group-"), gateway_mqtt_url=stack.mqtt_url)
        service = CloudService(config)
        await service.start()
        try:
            yield service
        finally:
            await service.stop()
    finally:
        stack.stop()


def _vitalbridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vitalbridge.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # Off the event loop: the cloud serving the command runs on it.
    return await asyncio.to_thread(_vitalbridge, *args)


async def test_code_enroll_run_stored(cloud_service: CloudService, tmp_path: Path,
                                      unique_name: Callable[[str], str]) -> None:
    security, store = cloud_service.security, cloud_service.store
    assert security is not None and store is not None and cloud_service.influx is not None
    gateway, patient = unique_name("home-"), unique_name("pat-")
    security.registry.add_patient(Patient(patient, "Ada"))
    security.registry.add_gateway(Gateway(gateway, "Ada's flat", (patient,)))
    add_user(security, "dr.ada", Role.DOCTOR, care=[patient])

    async with httpx.AsyncClient(base_url=cloud_service.api_url) as client:
        login = await client.post("/api/v1/auth/token", data={"username": "dr.ada", "password": PASSWORD})
        doctor = {"Authorization": f"Bearer {login.json()['access_token']}"}
        issued = await client.post(f"/api/v1/gateways/{gateway}/enrolment", headers=doctor)
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]

    config = tmp_path / "home" / "gateway.yaml"
    enrolled = await _cli("edge", "enroll", "--code", code.lower(), "--cloud", cloud_service.api_url,
                          "--config", str(config))
    assert enrolled.returncode == 0, enrolled.stderr
    assert "warning: plain http:// to this machine" in enrolled.stderr
    assert f"this is gateway {gateway}, sending for patient(s) {patient}" in enrolled.stdout
    credentials = tmp_path / "home" / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    for name in ("broker-password", "broker-ca.pem"):
        assert stat.S_IMODE((credentials / name).stat().st_mode) == 0o600
    password = (credentials / "broker-password").read_text().strip()
    assert len(password) >= 16
    assert cloud_service.broker_accounts is not None
    assert (credentials / "broker-ca.pem").read_text().strip() == cloud_service.broker_accounts.ca_pem().strip()
    text = config.read_text()
    assert f"gateway: {gateway}" in text and password not in text and "mqtts://" in text

    paired = await _cli("edge", "pair", "--config", str(config), "--address", "copd_stable", "--transport",
                        "virtual", "--profile", "generic.pulse_oximeter", "--patient", patient)
    assert paired.returncode == 0, paired.stderr
    paired_text = config.read_text()
    process = subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "edge", "run", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await wait_for(lambda: cloud_service.stats.stored_batches >= 2, timeout_s=60)
    finally:
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert cloud_service.stats.rejected == 0
    assert cloud_service.influx_reader is not None
    assert await count_points(cloud_service.influx_reader, where=f"\"patient\" = '{patient}'") > 0

    # The same code again, a code never issued, and one past its time: plain words, no traceback.
    expired = EnrolmentCodes(store.engine).issue(gateway, created_by="dr.ada",
                                                 now=cloud_service.now() - dt.timedelta(days=2)).code
    for attempt, words in ((code, "has been used already"), ("ABCD-EFGH-JK", "does not know this enrolment code"),
                           (expired, "has expired")):
        refused = await _cli("edge", "enroll", "--code", attempt, "--cloud", cloud_service.api_url,
                             "--config", str(config))
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and refused.stderr.strip().count("\n") == 1  # warning + message
    assert config.read_text() == paired_text  # the refusals changed nothing
    assert cloud_service.broker_accounts is not None
