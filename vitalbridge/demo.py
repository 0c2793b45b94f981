"""``vitalbridge demo``: the whole system on its embedded default, in one process.

Starts Mosquitto and influxd (unless URLs of running ones are given), the cloud (ingest, rules,
API) and a gateway with virtual pulse oximeters for three patients, one of whom slides into
hypoxia. The recent past is replayed quickly, then the devices go on live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    assert service.influx is not None
    total = 0
    for measurement in (NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT):
        series = await service.influx.query(f'SELECT count("value") FROM "{measurement}"')
        if series:
            total += int(series[0]["values"][0][1])
    return total


async def run_demo(options: DemoOptions, *, announce: Any = print) -> DemoResult:
    """Run the demo; returns the counts once everything has stopped cleanly."""
    run_dir = options.run_dir or Path(tempfile.mkdtemp(prefix="vitalbridge-demo-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    stack = LocalStack(run_dir / "stack", mqtt=options.mqtt_url is None, influx=options.influx_url is None)
    stack.start()
    try:
        mqtt_url = options.mqtt_url or stack.mqtt_url
        influx_url = options.influx_url or stack.influx_url
        cloud = CloudService(CloudConfig(
            mqtt_url=mqtt_url, influx_url=influx_url, influx_db=f"vitalbridge_demo_{stamp}",
            database_url=f"sqlite:///{run_dir / 'cloud.db'}", http_port=options.http_port or free_port(),
            # Its own client id and shared-subscription group, and no session kept after it: pointed at a
            # broker that serves a real cloud, the demo never takes a share of that cloud's messages.
            client_id=f"vitalbridge-demo-ingest-{stamp}", shared_group=f"vitalbridge-demo-{stamp}",
            session_expiry_s=0, auth_secret=secrets.token_hex(32),
        ))
        await cloud.start()
        try:
            logins = await asyncio.to_thread(_register, cloud, f"demo-home-{stamp}")
            return await _run_gateway(options, cloud, mqtt_url, run_dir, stamp, announce, logins)
        finally:
            await cloud.stop()
    finally:
        stack.stop()


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
                       announce: Any, logins: dict[str, str]) -> DemoResult:
    devices = tuple(
        DeviceConfig(id=f"oximeter-{index + 1}", patient=patient, profile=DEMO_PROFILE, transport="virtual",
                     address=scenario, options={"seed": index + 1})
        for index, (patient, scenario) in enumerate(DEMO_PATIENTS)
    )
    config = GatewayConfig(gateway=f"demo-home-{stamp}", mqtt_url=mqtt_url, spool=str(run_dir / "spool.db"),
                           batch_interval_s=1.0, devices=devices)
    start_ns = time.time_ns() - int(options.history_s * 1e9)
    transports = build_transports()
    register_virtual(transports, start_ns=start_ns, speed=options.speed)
    agent = build_agent(config, transports=transports)
    announce(f"VitalBridge demo: API {cloud.api_url}/api/v1 (docs {cloud.api_url}/api/docs); "
             f"broker {mqtt_url}; InfluxDB {cloud.config.influx_url} database {cloud.config.influx_db}")
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
