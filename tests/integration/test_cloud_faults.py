"""The cloud core under faults, against real Mosquitto, influxd and SQLite, with exact counts.

Each test runs its own stack (the stack runner's Mosquitto with persistence and influxd) so that
stopping or killing a server disturbs no other test. Gateways are the real spool and publisher
(tests/integration/_gateway.py): a batch leaves a gateway only when the cloud confirms it stored it.
Every test ends with every generated sample in InfluxDB exactly once (InfluxQL counts) and nothing
left unconfirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cloud.service import CloudConfig, CloudService
from cloud.store import AlertQuery, open_store
from tests.integration._gateway import TestGateway, running_gateway, spo2_batch
from tests.integration.helpers import count_points, publish, wait_for
from vitalbridge.stack import LocalStack, free_port
from vitals.codec import encode_batch
from vitals.samples import Batch, Stream
from vitals.topics import data_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = 10**9


def _config(stack: LocalStack, tmp_path: Path, **overrides: Any) -> CloudConfig:
    values: dict[str, Any] = {
        "mqtt_url": stack.mqtt_url, "influx_url": stack.influx_url, "influx_db": "faults",
        "database_url": f"sqlite:///{tmp_path / 'cloud.db'}", "http_port": free_port(),
        "client_id": "faults-ingest", "max_wait_ms": 20.0, "registry": "off",
    }
    return CloudConfig(**(values | overrides))


@contextlib.asynccontextmanager
async def _cloud(config: CloudConfig) -> AsyncIterator[CloudService]:
    service = CloudService(config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def _stream_of_batches(gateway: TestGateway, patients: int, batches: int, values: int, start_ns: int) -> None:
    for n in range(batches):
        for p in range(patients):
            gateway.add(spo2_batch(gateway.gateway, f"pt-{p}", start_ns + n * values * S,
                                   [float(95 + (n + k) % 4) for k in range(values)]))


async def _points(influx_url: str, db: str, where: str = "") -> int:
    from cloud.timeseries import InfluxV1Client

    async with InfluxV1Client(influx_url, db) as influx:
        return await count_points(influx, where=where)


def _logged_batches(tmp_path: Path) -> int:
    store = open_store(f"sqlite:///{tmp_path / 'cloud.db'}")
    try:
        return store.ingested_batches()
    finally:
        store.close()


# -- the ingest killed mid-stream ------------------------------------------------------------------------


def _ingest_process(config: CloudConfig, log: Path) -> subprocess.Popen[bytes]:
    environment = os.environ | {
        "VB_MQTT_URL": config.mqtt_url, "VB_INFLUX_URL": config.influx_url, "VB_INFLUX_DB": config.influx_db,
        "VB_DATABASE_URL": config.database_url, "VB_HTTP_PORT": str(config.http_port),
        "VB_INGEST_CLIENT_ID": config.client_id, "VB_INGEST_MAX_WAIT_MS": "20", "VB_REGISTRY": "off",
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "vitalbridge.cli", "cloud", "ingest"], env=environment,
                                stdout=out, stderr=subprocess.STDOUT)


async def _ready(port: int, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"http://127.0.0.1:{port}/health")
                if response.status_code == 200:
                    return dict(response.json())
            await asyncio.sleep(0.2)
    raise AssertionError("the ingest process never became ready")


async def test_ingest_killed_mid_stream_loses_and_doubles_nothing(own_stack: LocalStack, tmp_path: Path) -> None:
    config = _config(own_stack, tmp_path)
    log = tmp_path / "ingest.log"
    process = _ingest_process(config, log)
    gateway = TestGateway("gw-kill", own_stack.mqtt_url, tmp_path / "spool.db", ack_timeout_s=3.0)
    try:
        await _ready(config.http_port)
        async with running_gateway(gateway):
            # Long enough that the kill below lands while most of it is still to be confirmed.
            _stream_of_batches(gateway, patients=10, batches=100, values=10, start_ns=time.time_ns() - 3600 * S)
            await wait_for(lambda: gateway.publisher.confirmed >= 60, timeout_s=60)
            process.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
            process.wait(10)
            stranded = len(gateway.spool)
            process = _ingest_process(config, log)
            await _ready(config.http_port)
            assert await gateway.confirmed_all(90), log.read_text()[-2000:]
            health = await _ready(config.http_port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert stranded > 0  # the kill really came mid-stream
    assert gateway.publisher.refused == 0
    assert await _points(config.influx_url, config.influx_db) == gateway.added_samples == 10_000
    assert _logged_batches(tmp_path) == 1000
    assert health["ingest"]["in_flight"] == 0


# -- InfluxDB away ------------------------------------------------------------------------------------


async def test_influxd_down_holds_everything_reports_a_stall_and_stores_it_all_after(
    own_stack: LocalStack, tmp_path: Path
) -> None:
    config = _config(own_stack, tmp_path, stall_s=2.0)
    influxd = own_stack.influxdb
    assert influxd is not None
    async with _cloud(config) as cloud, httpx.AsyncClient() as http:
        gateway = TestGateway("gw-influx", own_stack.mqtt_url, tmp_path / "spool.db", ack_timeout_s=2.0)
        async with running_gateway(gateway):
            start = time.time_ns() - 3600 * S
            _stream_of_batches(gateway, patients=5, batches=10, values=10, start_ns=start)
            assert await gateway.confirmed_all(60)
            influxd.stop()
            _stream_of_batches(gateway, patients=5, batches=10, values=10, start_ns=start + 100 * S)
            await wait_for(lambda: cloud.worker is not None and cloud.worker.stalled, timeout_s=30)
            health = await http.get(f"{cloud.api_url}/health")
            metrics = (await http.get(f"{cloud.api_url}/metrics")).text
            confirmed_while_down = gateway.publisher.confirmed
            await asyncio.sleep(4)  # nothing is confirmed while InfluxDB is away
            assert gateway.publisher.confirmed == confirmed_while_down == 50
            influxd.start()
            assert await gateway.confirmed_all(60)
        health_after = await http.get(f"{cloud.api_url}/health")
    assert health.status_code == 503 and health.json()["ingest"]["stalled"] is True
    assert "cannot reach InfluxDB" in health.json()["ingest"]["last_error"]
    assert "vb_ingest_stalled 1.0" in metrics and 'vb_ingest_store_errors_total{store="influxdb"}' in metrics
    assert health_after.status_code == 200
    assert await _points(config.influx_url, config.influx_db) == gateway.added_samples == 1000
    assert _logged_batches(tmp_path) == 100


# -- a batch InfluxDB refuses ------------------------------------------------------------------------


async def test_a_batch_beyond_the_retention_policy_is_dead_lettered_and_traffic_behind_it_is_stored(
    own_stack: LocalStack, tmp_path: Path
) -> None:
    config = _config(own_stack, tmp_path)
    async with _cloud(config) as cloud:
        assert cloud.influx is not None
        await cloud.influx.query(f'CREATE RETENTION POLICY "week" ON "{config.influx_db}" DURATION 7d '
                                 "REPLICATION 1 DEFAULT")
        gateway = TestGateway("gw-old", own_stack.mqtt_url, tmp_path / "spool.db")
        async with running_gateway(gateway):
            now = time.time_ns()
            for n in range(30):
                old = n == 12  # a gateway back after a long outage: 30 days old
                start = now - (30 * 86_400 * S if old else (600 - 10 * n) * S)
                gateway.add(spo2_batch("gw-old", "pt-1", start, [96.0] * 10))
            assert await gateway.confirmed_all(60)
        letters = cloud.store.dead_letters() if cloud.store else []
    assert gateway.publisher.refused == 1 and gateway.publisher.confirmed == 29
    [letter] = letters
    assert letter.reason.startswith("timeseries: InfluxDB write failed (400)")
    assert "retention policy" in letter.reason
    assert await _points(config.influx_url, config.influx_db) == 290


# -- the database failing for a few seconds ---------------------------------------------------------------


async def test_a_locked_database_holds_acknowledgements_and_loses_nothing(own_stack: LocalStack,
                                                                          tmp_path: Path) -> None:
    config = _config(own_stack, tmp_path)
    release = threading.Event()
    locked = threading.Event()

    def hold_the_lock() -> None:
        connection = sqlite3.connect(tmp_path / "cloud.db", timeout=30)
        connection.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(30)
        connection.rollback()
        connection.close()

    async with _cloud(config) as cloud:
        gateway = TestGateway("gw-db", own_stack.mqtt_url, tmp_path / "spool.db", ack_timeout_s=2.0)
        async with running_gateway(gateway):
            start = time.time_ns() - 3600 * S
            _stream_of_batches(gateway, patients=5, batches=5, values=10, start_ns=start)
            assert await gateway.confirmed_all(60)
            holder = threading.Thread(target=hold_the_lock)
            holder.start()
            await asyncio.to_thread(locked.wait, 10)
            _stream_of_batches(gateway, patients=5, batches=5, values=10, start_ns=start + 50 * S)
            await wait_for(lambda: cloud.stats.transient_errors >= 1, timeout_s=30)
            assert gateway.publisher.confirmed == 25  # nothing acknowledged while nothing was recorded
            release.set()
            await asyncio.to_thread(holder.join, 30)
            assert await gateway.confirmed_all(60)
    assert await _points(config.influx_url, config.influx_db) == gateway.added_samples == 500
    assert _logged_batches(tmp_path) == 50


# -- alert state across a restart ------------------------------------------------------------------------


async def test_a_restart_mid_hypoxia_continues_one_alert_and_resolves_it_once(own_stack: LocalStack,
                                                                               tmp_path: Path) -> None:
    config = _config(own_stack, tmp_path)
    start = time.time_ns() - 3600 * S
    gateway = TestGateway("gw-hyp", own_stack.mqtt_url, tmp_path / "spool.db")
    async with running_gateway(gateway):
        async with _cloud(config) as first:
            gateway.add(spo2_batch("gw-hyp", "pt-h", start, [97.0] * 30))
            gateway.add(spo2_batch("gw-hyp", "pt-h", start + 30 * S, [85.0] * 90))  # fires at 60 s
            assert await gateway.confirmed_all(30)
            assert first.store is not None
            [opened] = first.store.alerts()
            assert opened.state == "firing"
        # Stopped mid-episode; the episode goes on while the cloud is away.
        gateway.add(spo2_batch("gw-hyp", "pt-h", start + 120 * S, [84.0] * 60))
        gateway.add(spo2_batch("gw-hyp", "pt-h", start + 180 * S, [97.0] * 120))
        async with _cloud(config) as second:
            assert await gateway.confirmed_all(30)
            assert second.store is not None
            alerts = second.store.alerts(AlertQuery(limit=10))
    [alert] = alerts
    assert (alert.id, alert.episode_start_ns, alert.state, alert.worst_value) == (opened.id, start + 30 * S,
                                                                                 "resolved", 84.0)
    assert alert.resolved_ns == start + 240 * S


# -- a reinstalled gateway ----------------------------------------------------------------------------


async def test_a_recreated_spool_starts_at_zero_and_its_data_is_stored(own_stack: LocalStack,
                                                                       tmp_path: Path) -> None:
    config = _config(own_stack, tmp_path)
    start = time.time_ns() - 3600 * S
    async with _cloud(config) as cloud:
        for life, path in enumerate(("spool-a.db", "spool-b.db")):
            gateway = TestGateway("gw-re", own_stack.mqtt_url, tmp_path / path)
            async with running_gateway(gateway):
                for n in range(10):
                    gateway.add(spo2_batch("gw-re", "pt-1", start + (life * 100 + n * 10) * S, [96.0] * 10))
                assert await gateway.confirmed_all(30)
                assert gateway.publisher.confirmed == 10
        assert cloud.stats.sequence_backwards == 0
        assert cloud.store is not None and len(cloud.store.gateway_epochs("gw-re")) == 2
    assert await _points(config.influx_url, config.influx_db) == 200


# -- one amplifying message --------------------------------------------------------------------------------


async def test_a_1_mib_amplifying_batch_is_refused_and_other_patients_flow(own_stack: LocalStack,
                                                                          tmp_path: Path) -> None:
    config = _config(own_stack, tmp_path)
    async with _cloud(config) as cloud:
        stream = Stream.regular("ecg", "mV", time.time_ns() - 7200 * S, 250.0, np.zeros(262_144), scale=0.001)
        bomb = encode_batch(Batch("gw-bomb", 0, "pt-b", "ecg-1", "generic.ecg", (stream,) * 30, epoch="e1"))
        assert len(bomb) > 500_000
        gateway = TestGateway("gw-ok", own_stack.mqtt_url, tmp_path / "spool.db")
        async with running_gateway(gateway):
            host, port = own_stack.mqtt_url.removeprefix("mqtt://").split(":")
            await asyncio.to_thread(publish, host, int(port), [(data_topic("gw-bomb"), bomb)])
            _stream_of_batches(gateway, patients=5, batches=4, values=10, start_ns=time.time_ns() - 600 * S)
            assert await gateway.confirmed_all(30)
        await wait_for(lambda: cloud.stats.rejected == 1)
        assert dict(cloud.stats.rejected_by_reason) == {"amplifying": 1}
    assert await _points(config.influx_url, config.influx_db) == 200
    assert await _points(config.influx_url, config.influx_db, "\"patient\" = 'pt-b'") == 0


# -- the broker restarted or killed while the ingest is away -----------------------------------------------


@pytest.mark.parametrize("how", ["restart", "kill"])
async def test_broker_restarted_while_the_ingest_is_away_and_the_gateway_back_first(
    own_stack: LocalStack, tmp_path: Path, how: str
) -> None:
    config = _config(own_stack, tmp_path)
    mosquitto = own_stack.mosquitto
    assert mosquitto is not None
    async with _cloud(config):
        pass  # the ingest's session now exists on the broker
    gateway = TestGateway("gw-broker", own_stack.mqtt_url, tmp_path / "spool.db", ack_timeout_s=2.0)
    async with running_gateway(gateway):
        _stream_of_batches(gateway, patients=5, batches=10, values=10, start_ns=time.time_ns() - 3600 * S)
        await wait_for(lambda: gateway.publisher.published == 50, timeout_s=30)  # the broker has them all
        if how == "kill":
            mosquitto.kill()
            mosquitto.start()
        else:
            mosquitto.restart()
        await wait_for(lambda: gateway.publisher.connected.is_set(), timeout_s=30)  # the gateway is back first
        async with _cloud(config):
            assert await gateway.confirmed_all(60)
    assert await _points(config.influx_url, config.influx_db) == gateway.added_samples == 500
    assert _logged_batches(tmp_path) == 50


# -- a day offline, then live readings first ----------------------------------------------------------------


async def test_after_a_day_offline_live_readings_go_first_and_the_backlog_is_judged_in_its_own_time(
    own_stack: LocalStack, tmp_path: Path
) -> None:
    config = _config(own_stack, tmp_path)
    now = time.time_ns()
    day_start = now - 86_400 * S
    gateway = TestGateway("gw-away", own_stack.mqtt_url, tmp_path / "spool.db", live_window_s=30.0)
    # 24 h of 1 Hz SpO2 spooled while the gateway was offline, with 5 min of hypoxia at hour 10.
    hypoxia = range(10 * 3600, 10 * 3600 + 300)
    for minute in range(24 * 60):
        first = minute * 60
        values = [85.0 if second in hypoxia else 97.0 for second in range(first, first + 60)]
        gateway.add(spo2_batch("gw-away", "pt-1", day_start + first * S, values), created_ns=day_start + first * S)
    live_seq = gateway.add(spo2_batch("gw-away", "pt-1", now, [96.0] * 5, step_s=0.2))
    async with _cloud(config) as cloud, running_gateway(gateway):
        assert await gateway.confirmed_all(120)
        assert cloud.store is not None
        alerts = cloud.store.alerts(AlertQuery(limit=10))
    store = open_store(config.database_url)
    try:
        with store.engine.connect() as connection:
            from sqlalchemy import text

            order = [int(seq) for (seq,) in connection.execute(
                text("SELECT seq FROM ingest_log ORDER BY received_ns, seq"))]
    finally:
        store.close()
    assert len(order) == 24 * 60 + 1
    assert order.index(live_seq) < 300  # among the first micro-batches, not behind 1,440 backlog batches
    # The backlog's hypoxia raised one alert, marked late; the live readings and the stable hours none.
    [alert] = alerts
    assert (alert.late, alert.episode_start_ns, alert.worst_value) == (True, day_start + hypoxia[0] * S, 85.0)
    assert alert.state == "resolved"
    assert await _points(config.influx_url, config.influx_db) == gateway.added_samples == 86_405
