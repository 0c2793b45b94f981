"""Several ingest workers on one shared subscription, and gateway health, against real servers.

Three `vitalbridge cloud ingest` processes (their own client ids, one shared subscription) read
from the stack runner's Mosquitto and write to its influxd and PostgreSQL. Gateways are
the real spool and publisher; one worker is killed mid-stream for good. Every sample must end up
stored exactly once and every hypoxia episode must raise exactly one alert, however its batches
were spread over the workers. Gateway health is read from real gateway processes: online on their
birth message, offline through their last will when killed, unknown after silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.service import CloudConfig
from cloud.store import AlertQuery, open_store
from tests.auth_helpers import add_user, bearer
from tests.integration._gateway import TestGateway, running_gateway, spo2_batch
from tests.integration.helpers import wait_for
from vitalbridge.stack import LocalStack, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = 10**9
_PATIENTS = 6
_BATCHES = 60  # per patient, 10 s each: 10 minutes of 1 Hz SpO2
_VALUES = 10
_EPISODE = range(200, 330)  # seconds into the record where SpO2 sits at 84 %: one hypoxia episode


def _environment(config: CloudConfig, **extra: str) -> dict[str, str]:
    return os.environ | config.to_env() | extra


def _worker(config: CloudConfig, index: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    environment = _environment(config, VB_INGEST_WORKER_INDEX=str(index), VB_HTTP_PORT=str(port),
                               VB_INGEST_SESSION_EXPIRY_S="5")
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "cloud", "ingest"], env=environment,
                                   stdout=out, stderr=subprocess.STDOUT)
    return process, port


async def _health(port: int) -> tuple[int, dict[str, Any]] | None:
    async with httpx.AsyncClient() as client:
        with contextlib.suppress(httpx.HTTPError):
            response = await client.get(f"http://127.0.0.1:{port}/health")
            return response.status_code, response.json()
    return None


async def _ready(port: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = await _health(port)
        if answer is not None and answer[0] == 200:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the ingest worker on port {port} never became ready")


def _value(second: int) -> float:
    return 84.0 if second in _EPISODE else 96.0 + second % 3


async def test_three_workers_store_everything_once_and_one_alert_per_episode(pg_stack: LocalStack,
                                                                             tmp_path: Path) -> None:
    own_stack = pg_stack
    assert own_stack.database_url is not None
    config = CloudConfig(mqtt_url=own_stack.mqtt_url, influx_url=own_stack.influx_url, influx_db="scaleout",
                         database_url=own_stack.database_url, max_wait_ms=20.0,
                         client_id="scaleout-ingest", max_messages=50, registry="off")
    log = tmp_path / "workers.log"
    workers = [_worker(config.model_copy(update={"client_id": f"scaleout-ingest-{i}"}), i, log) for i in range(3)]
    gateways = [TestGateway(f"gw-{g}", own_stack.mqtt_url, tmp_path / f"spool-{g}.db", ack_timeout_s=3.0,
                            window=32) for g in range(2)]
    start_ns = time.time_ns() - 3600 * S
    try:
        for _process, port in workers:
            await _ready(port)
        async with running_gateway(gateways[0]), running_gateway(gateways[1]):
            for n in range(_BATCHES):
                for g, gateway in enumerate(gateways):
                    for p in range(_PATIENTS // 2):
                        values = [_value(n * _VALUES + k) for k in range(_VALUES)]
                        gateway.add(spo2_batch(gateway.gateway, f"pt-{g}-{p}", start_ns + n * _VALUES * S, values))
            await wait_for(lambda: sum(g.publisher.confirmed for g in gateways) >= 60, timeout_s=60)
            killed, _port = workers[0]
            killed.send_signal(signal.SIGKILL)  # mid-stream, for good: the other two carry on
            killed.wait(10)
            for gateway in gateways:
                assert await gateway.confirmed_all(180), log.read_text()[-3000:]
        store = open_store(config.database_url)
        try:
            assert store.ingested_batches() == _BATCHES * _PATIENTS
            assert store.ingested_samples() == _BATCHES * _PATIENTS * _VALUES
            alerts = store.alerts(AlertQuery(limit=1000))
            by_patient: dict[str, int] = {}
            for alert in alerts:
                by_patient[alert.patient] = by_patient.get(alert.patient, 0) + 1
            assert by_patient == {f"pt-{g}-{p}": 1 for g in range(2) for p in range(_PATIENTS // 2)}, [
                (a.patient, a.episode_start_ns, a.late) for a in alerts]
            assert {a.episode_start_ns - start_ns for a in alerts} == {_EPISODE.start * S}
            health = {record.gateway: record for record in store.gateway_health()}
            assert set(health) == {"gw-0", "gw-1"} and all(r.state == "online" for r in health.values())
        finally:
            store.close()
        from cloud.timeseries import InfluxV1Client
        from tests.integration.helpers import count_points

        async with InfluxV1Client(config.influx_url, config.influx_db) as influx:
            assert await count_points(influx) == _BATCHES * _PATIENTS * _VALUES
        for _process, port in workers[1:]:
            answer = await _health(port)
            assert answer is not None and answer[0] == 200, answer
    finally:
        for process, _port in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _port in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)


async def test_a_second_worker_with_the_same_client_id_takes_over_without_a_fight(own_stack: LocalStack,
                                                                                 tmp_path: Path) -> None:
    config = CloudConfig(mqtt_url=own_stack.mqtt_url, influx_url=own_stack.influx_url, influx_db="twins",
                         database_url=f"sqlite:///{tmp_path / 'cloud.db'}", client_id="same-id", registry="off")
    log = tmp_path / "twins.log"
    first, first_port = _worker(config, 0, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        await _ready(first_port)
        second, second_port = _worker(config, 1, log)
        await _ready(second_port)

        async def first_gave_up() -> bool:
            answer = await _health(first_port)
            return answer is not None and answer[0] == 503 and "took over" in str(answer[1])

        deadline = time.monotonic() + 30
        while not await first_gave_up():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # were the first reconnecting, it would take the session back within this
        answer = await _health(second_port)
        assert answer is not None and answer[0] == 200, answer
        assert await first_gave_up()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(20)


# -- gateway health from real gateway processes --------------------------------------------------------


def _edge_process(tmp_path: Path, gateway: str, mqtt_url: str) -> subprocess.Popen[str]:
    config = tmp_path / f"{gateway}.yaml"
    config.write_text(
        f"gateway: {gateway}\n"
        f"mqtt_url: {mqtt_url}\n"
        f"spool: {tmp_path / (gateway + '-spool.db')}\n"
        "batch_interval_s: 0.5\n"
        "devices:\n"
        "  - id: oximeter-1\n"
        "    patient: patient-7\n"
        "    profile: generic.pulse_oximeter\n"
        "    transport: virtual\n"
        "    address: copd_stable\n"
        "    options: {speed: 1, seed: 3}\n"
    )
    return subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "edge", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


async def test_gateway_state_follows_birth_will_and_silence(own_stack: LocalStack, tmp_path: Path) -> None:
    from cloud.service import CloudService

    config = CloudConfig(mqtt_url=own_stack.mqtt_url, influx_url=own_stack.influx_url, influx_db="health",
                         database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=free_port(),
                         client_id="health-ingest", max_wait_ms=20.0, gateway_silent_s=4.0, registry="off")
    service = CloudService(config)
    await service.start()
    edge = _edge_process(tmp_path, "home-a", own_stack.mqtt_url)
    try:
        assert service.security is not None
        add_user(service.security, "admin", "admin")
        async with httpx.AsyncClient(base_url=service.api_url, headers=bearer(service.security, "admin")) as api:
            async def gateway() -> dict[str, Any]:
                response = await api.get("/api/v1/gateways/home-a")
                return dict(response.json()) if response.status_code == 200 else {}

            async def reaches(predicate: Any, timeout_s: float = 60.0) -> dict[str, Any]:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    found = await gateway()
                    if found and predicate(found):
                        return found
                    await asyncio.sleep(0.2)
                raise AssertionError(f"gateway never reached the expected state: {await gateway()}")

            online = await reaches(lambda g: g["state"] == "online" and g["devices"]
                                   and g["devices"][0]["last_reading"] is not None)
            assert online["devices"][0]["patient"] == "patient-7"
            assert online["spool_epoch"] and online["version"]
            edge.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the last will
            edge.wait(10)
            offline = await reaches(lambda g: g["state"] == "offline")
            assert offline["reported_state"] == "offline"
            listed = (await api.get("/api/v1/gateways", params={"state": "offline"})).json()
            assert [g["gateway"] for g in listed] == ["home-a"]
            edge = _edge_process(tmp_path, "home-a", own_stack.mqtt_url)
            back = await reaches(lambda g: g["state"] == "online")
            assert back["since"] > offline["since"]
            # A gateway that stops talking without a will reaching us is "unknown" after the silence limit.
            edge.send_signal(signal.SIGSTOP)
            try:
                unknown = await reaches(lambda g: g["state"] == "unknown", timeout_s=30)
                assert unknown["reported_state"] == "online" and unknown["silent_s"] >= 4.0
            finally:
                edge.send_signal(signal.SIGCONT)
            assert (await api.get("/api/v1/gateways/nobody")).status_code == 404
    finally:
        if edge.poll() is None:
            edge.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                edge.wait(30)
        await service.stop()


async def test_cloud_ingest_workers_runs_n_processes_and_stops_them(own_stack: LocalStack, tmp_path: Path) -> None:
    config = CloudConfig(mqtt_url=own_stack.mqtt_url, influx_url=own_stack.influx_url, influx_db="workers",
                         database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=0, registry="off")
    parent = subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "cloud", "ingest", "--workers", "2"],
                              env=_environment(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ports: list[int] = []
    try:
        assert parent.stdout is not None
        deadline = time.monotonic() + 60
        while len(ports) < 2 and time.monotonic() < deadline:
            line = await asyncio.to_thread(parent.stdout.readline)
            if "health and metrics on http://" in line:
                ports.append(int(line.split("health and metrics on http://")[1].split(":")[1].split()[0]))
        assert len(ports) == 2
        for port in ports:
            await _ready(port)
        ids = set()
        for port in ports:
            answer = await _health(port)
            assert answer is not None
            ids.add(str(answer[1]))
        assert len(ids) == 2
    finally:
        parent.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(parent.communicate, timeout=30)
    assert parent.returncode == 0, output[-2000:]
    for port in ports:
        assert await _health(port) is None  # the workers stopped with their parent
