"""``vitalbridge demo``: the whole system on its embedded default, in one process.

Starts Mosquitto and influxd (unless URLs of running ones are given), the cloud (ingest, rules,
API) and a gateway with virtual pulse oximeters for three patients, one of whom slides into
hypoxia. The recent past is replayed quickly, then the devices go on live.

By default the stack runs its secure profile: a fresh CA, Mosquitto over TLS only with an account
per client (the gateway's made through the broker's dynamic-security plugin, limited to its own
topics), influxd with a write user for the ingest and a read user for the API. ``secure=False``
(``--insecure``) runs the old open profile; so does naming a running broker or InfluxDB.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cloud.auth import Role
from cloud.registry import Gateway, Patient
from cloud.service import CloudConfig, CloudService
from cloud.store import AlertQuery
from cloud.timeseries import NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT
from edge.config import DeviceConfig, GatewayConfig
from edge.gateway import build_agent, build_transports
from vitalbridge._signals import stop_on_signals
from vitalbridge.stack import LocalStack, free_port
from vitalbridge.virtual import register_virtual

__all__ = ["DEMO_DOCTOR", "DEMO_FAMILY", "DEMO_PATIENTS", "DemoOptions", "DemoResult", "run_demo"]

log = logging.getLogger(__name__)

DEMO_PATIENTS = (
    ("patient-001", "copd_stable"),
    ("patient-002", "hypertension_stable"),
    ("patient-003", "copd_acute_hypoxia"),  # slides into hypoxia
)
DEMO_PROFILE = "generic.pulse_oximeter"
DEMO_DOCTOR = "demo.doctor"  # on the care team of every demo patient
DEMO_FAMILY = "demo.family"  # family of the patient who slides into hypoxia


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs. ``duration_s=None`` runs until Ctrl-C."""

    duration_s: float | None = 60.0
    mqtt_url: str | None = None
    influx_url: str | None = None
    http_port: int | None = None
    history_s: float = 3 * 3600.0
    speed: float = 240.0
    run_dir: Path | None = None
    secure: bool = True

    @property
    def secure_profile(self) -> bool:
        """True when the demo starts both servers itself in the secure profile."""
        return self.secure and self.mqtt_url is None and self.influx_url is None


@dataclass(frozen=True)
class DemoResult:
    """The final line: values the gateway published, points InfluxDB holds, alerts raised."""

    published: int
    stored: int
    alerts: int

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps({"published": self.published, "stored": self.stored, "alerts": self.alerts})


async def _count_stored(service: CloudService) -> int:
    assert service.influx_reader is not None
    total = 0
    for measurement in (NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT):
        series = await service.influx_reader.query(f'SELECT count("value") FROM "{measurement}"')
        if series:
            total += int(series[0]["values"][0][1])
    return total


async def run_demo(options: DemoOptions, *, announce: Any = print) -> DemoResult:
    """Run the demo; returns the counts once everything has stopped cleanly."""
    run_dir = options.run_dir or Path(tempfile.mkdtemp(prefix="vitalbridge-demo-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    secure = options.secure_profile
    stack = LocalStack(run_dir / "stack", mqtt=options.mqtt_url is None, influx=options.influx_url is None,
                       secure=secure)
    await asyncio.to_thread(stack.start)
    try:
        mqtt_url = options.mqtt_url or stack.mqtt_url
        influx_url = options.influx_url or stack.influx_url
        database = f"vitalbridge_demo_{stamp}"
        config = CloudConfig(
            mqtt_url=mqtt_url, influx_url=influx_url, influx_db=database,
            database_url=f"sqlite:///{run_dir / 'cloud.db'}", http_port=options.http_port or free_port(),
            # Its own client id and shared-subscription group, and no session kept after it: pointed at a
            # broker that serves a real cloud, the demo never takes a share of that cloud's messages.
            client_id=f"vitalbridge-demo-ingest-{stamp}", shared_group=f"vitalbridge-demo-{stamp}",
            session_expiry_s=0, auth_secret=secrets.token_hex(32),
        )
        if secure:
            config = await asyncio.to_thread(_secure_config, stack, config, database)
        cloud = CloudService(config)
        await cloud.start()
        try:
            gateway = f"demo-home-{stamp}"
            logins = await asyncio.to_thread(_register, cloud, gateway)
            broker = await asyncio.to_thread(_gateway_account, stack, gateway, run_dir) if secure else None
            return await _run_gateway(options, cloud, mqtt_url, run_dir, stamp, announce, logins, broker)
        finally:
            await cloud.stop()
    finally:
        stack.stop()


def _secure_config(stack: LocalStack, config: CloudConfig, database: str) -> CloudConfig:
    """The cloud's settings for the secure stack: the ingest's broker account and the broker's CA, the
    InfluxDB writer (ingest) and reader (API), and the PKI directory so that revoking a gateway in the
    registry also deletes its broker account."""
    stack.add_influx_database(database)
    username, password = stack.ingest_credentials()
    influx = stack.influx_accounts
    return config.model_copy(update={
        "mqtt_ca_file": str(stack.ca_file), "mqtt_username": username, "mqtt_password": SecretStr(password),
        "influx_username": influx.writer[0], "influx_password": SecretStr(influx.writer[1]),
        "influx_read_username": influx.reader[0], "influx_read_password": SecretStr(influx.reader[1]),
        "broker_pki_dir": str(stack.pki_dir),
    })


def _gateway_account(stack: LocalStack, gateway: str, run_dir: Path) -> tuple[str, str]:
    """Give the demo gateway its broker account; returns its CA file and its password file (0600)."""
    credentials = stack.broker_accounts().add_gateway(gateway)
    password_file = run_dir / "gateway-broker-password"
    descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(credentials.password + "\n")
    return str(stack.ca_file), str(password_file)


def _register(cloud: CloudService, gateway: str) -> dict[str, str]:
    """The demo's registry: its patients bound to its gateway, a doctor for all, a family member for one.
    Returns each login's one-run password."""
    assert cloud.security is not None
    registry, identity, now = cloud.security.registry, cloud.security.identity, dt.datetime.now(dt.UTC)
    for patient, scenario in DEMO_PATIENTS:
        registry.add_patient(Patient(patient, f"Demo patient {patient[-3:]}", conditions=(scenario,)))
    registry.add_gateway(Gateway(gateway, "demo home", tuple(patient for patient, _ in DEMO_PATIENTS)))
    logins = {DEMO_DOCTOR: secrets.token_urlsafe(12), DEMO_FAMILY: secrets.token_urlsafe(12)}
    identity.add_user(DEMO_DOCTOR, Role.DOCTOR, logins[DEMO_DOCTOR], now=now)
    identity.add_user(DEMO_FAMILY, Role.FAMILY, logins[DEMO_FAMILY], now=now)
    for patient, _ in DEMO_PATIENTS:
        registry.add_care_team_member(patient, DEMO_DOCTOR)
    registry.add_family_member(DEMO_PATIENTS[2][0], DEMO_FAMILY)
    return logins


async def _run_gateway(options: DemoOptions, cloud: CloudService, mqtt_url: str, run_dir: Path, stamp: str,
                       announce: Any, logins: dict[str, str], broker: tuple[str, str] | None) -> DemoResult:
    devices = tuple(
        DeviceConfig(id=f"oximeter-{index + 1}", patient=patient, profile=DEMO_PROFILE, transport="virtual",
                     address=scenario, options={"seed": index + 1})
        for index, (patient, scenario) in enumerate(DEMO_PATIENTS)
    )
    config = GatewayConfig(gateway=f"demo-home-{stamp}", mqtt_url=mqtt_url, spool=str(run_dir / "spool.db"),
                           batch_interval_s=1.0, devices=devices, mqtt_ca_file=broker[0] if broker else None,
                           mqtt_password_file=broker[1] if broker else None)
    start_ns = time.time_ns() - int(options.history_s * 1e9)
    transports = build_transports()
    register_virtual(transports, start_ns=start_ns, speed=options.speed)
    agent = build_agent(config, transports=transports)
    announce(f"VitalBridge demo: API {cloud.api_url}/api/v1 (docs {cloud.api_url}/api/docs); "
             f"broker {mqtt_url}; InfluxDB {cloud.config.influx_url} database {cloud.config.influx_db}")
    if broker is not None:
        announce(f"  secure profile: broker TLS only (CA {broker[0]}), one account per client, gateway "
                 f"{config.gateway} limited to vb/v1/{config.gateway}/...; InfluxDB with users (--insecure: open)")
    else:
        announce("  open profile: anonymous broker without TLS, InfluxDB without users (for development only)")
    for device in devices:
        announce(f"  {device.patient}: virtual pulse oximeter, scenario {device.address}")
    announce(f"  dashboard: {cloud.api_url}/web/ (sign in with a login below)")
    announce(f"  doctor login: {DEMO_DOCTOR} / {logins[DEMO_DOCTOR]} (all three patients)")
    announce(f"  family login: {DEMO_FAMILY} / {logins[DEMO_FAMILY]} ({DEMO_PATIENTS[2][0]} only, read-only)")
    announce(f"  try: TOKEN=$(curl -s -d username={DEMO_DOCTOR} -d password={logins[DEMO_DOCTOR]} "
             f"{cloud.api_url}/api/v1/auth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)"
             f"[\"access_token\"])')")
    announce(f"       curl -H \"Authorization: Bearer $TOKEN\" '{cloud.api_url}/api/v1/alerts'")
    stop = asyncio.Event()
    if options.duration_s is not None:
        asyncio.get_running_loop().call_later(options.duration_s, stop.set)
    with stop_on_signals(stop):
        await agent.run(stop)
    await cloud.drain()
    assert cloud.store is not None
    alerts = cloud.store.alerts(AlertQuery(limit=1000))
    for alert in alerts:
        announce(f"  alert: {alert.patient} {alert.rule}: {alert.message} ({alert.state})")
    return DemoResult(
        published=agent.publisher.published_samples,
        stored=await _count_stored(cloud),
        alerts=len(alerts),
    )
