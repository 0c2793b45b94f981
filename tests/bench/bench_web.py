"""Web views: how long each JSON view of the web app takes over a week of 1 Hz data for 50 patients.

The data: for every patient, an oximeter at 1 Hz (SpO2 and pulse rate) for the whole period,
respiratory rate every minute, blood pressure twice a day, a weighing every morning, and for every
fourth patient a glucose sensor every 5 minutes; all written to a real influxd (started here) through
the line protocol the ingest writes. The relational store (SQLite) holds the registry (one doctor on
every patient's care team, one family member), a few firing alerts and every gateway's health.

Each view is called through the API in-process (FastAPI over httpx's ASGI transport, so no network
but every layer of the app), as the web app calls it: the worklist of all patients, one patient's
SpO2 chart over 24 h, 7 d and 30 d (300 points), the one-week summary, and the family's today page.
Each is called once cold (first call after the writes) and then ``REPEATS`` times; the table shows
the cold call, the median and the slowest of the repeats, against the goal of 1 s per page.

``VB_BENCH_WEB_PATIENTS`` and ``VB_BENCH_WEB_DAYS`` shrink the data set for a quick check (the
defaults are the issue's 50 patients and 7 days).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.auth import Role
from cloud.registry import Gateway
from cloud.store import AlertRecord, DeviceHealth, GatewayHealth, open_store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, security_for
from vitalbridge.stack import InfluxDB

S = 10**9
PATIENTS = int(os.environ.get("VB_BENCH_WEB_PATIENTS", "50"))
DAYS = int(os.environ.get("VB_BENCH_WEB_DAYS", "7"))
REPEATS = 5
GOAL_S = 1.0
WRITE_LINES = 50_000  # lines per write request


def _patient_lines(index: int, start_s: int, end_s: int) -> list[str]:
    patient = f"p{index:03d}"
    tags = f"patient={patient}"
    lines: list[str] = []
    for t in range(start_s, end_s):  # the oximeter, 1 Hz
        spo2 = 93 + (t + index) % 6
        pulse = 60 + (t // 7 + index) % 30
        lines.append(f"vitals,device=oxi-{patient},metric=spo2,{tags} value={spo2}.0,quality=0i {t * S}")
        lines.append(f"vitals,device=oxi-{patient},metric=pulse_rate,{tags} value={pulse}.0,quality=0i {t * S}")
    for t in range(start_s, end_s, 60):
        lines.append(f"vitals,device=patch-{patient},metric=respiratory_rate,{tags} "
                     f"value={14 + (t // 60 + index) % 8}.0,quality=0i {t * S}")
    for day_start in range(start_s - start_s % 86_400, end_s, 86_400):
        for hour, systolic in ((7, 135), (19, 128)):
            t = day_start + hour * 3600 + index * 7
            if start_s <= t < end_s:
                lines.append(f"vitals,device=bp-{patient},metric=bp_systolic,{tags} "
                             f"value={systolic + index % 10}.0,quality=0i {t * S}")
                lines.append(f"vitals,device=bp-{patient},metric=bp_diastolic,{tags} "
                             f"value={84 + index % 5}.0,quality=0i {t * S}")
        t = day_start + 6 * 3600 + 30 * 60
        if start_s <= t < end_s:
            lines.append(f"vitals,device=scale-{patient},metric=body_weight,{tags} "
                         f"value={70 + index % 20 + (t // 86_400) % 3 * 0.2:.1f},quality=0i {t * S}")
    if index % 4 == 0:
        for t in range(start_s, end_s, 300):
            glucose = 5.0 + ((t // 300) % 48) * 0.15
            lines.append(f"vitals,device=cgm-{patient},metric=blood_glucose,{tags} "
                         f"value={glucose:.2f},quality=0i {t * S}")
    return lines


async def _fill(influx: InfluxV1Client, start_s: int, end_s: int) -> tuple[int, float]:
    points = 0
    began = time.perf_counter()
    for index in range(PATIENTS):
        for day in range(start_s, end_s, 86_400):  # a day at a time keeps the memory small
            lines = _patient_lines(index, day, min(day + 86_400, end_s))
            await influx.write_lines(lines, chunk_lines=WRITE_LINES)
            points += len(lines)
    return points, time.perf_counter() - began


async def _time(client: httpx.AsyncClient, path: str, params: dict[str, str], headers: dict[str, str]) -> float:
    began = time.perf_counter()
    response = await client.get(path, params=params, headers=headers)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return elapsed


async def _main() -> str:
    run_dir = Path(tempfile.mkdtemp(prefix="vb-bench-web-"))
    influxd = InfluxDB(run_dir / "influxdb")
    influxd.start()
    store = open_store(f"sqlite:///{run_dir / 'cloud.db'}")
    try:
        end_s = int(time.time()) // 3600 * 3600
        start_s = end_s - DAYS * 86_400
        now = dt.datetime.fromtimestamp(end_s, dt.UTC)
        influx = InfluxV1Client(influxd.url, "vbbench", timeout_s=120.0)
        await influx.create_database()
        points, write_s = await _fill(influx, start_s, end_s)
        security = security_for(store, lambda: now)
        patients = [f"p{i:03d}" for i in range(PATIENTS)]
        add_user(security, "dr.bench", Role.DOCTOR, care=patients)
        add_user(security, "family.bench", Role.FAMILY, family=[patients[0]])
        with Session(store.engine) as session, session.begin():
            for i, patient in enumerate(patients):
                if i % 5 == 0:
                    fired = (end_s - 3600 * (i % 24 + 1)) * S
                    session.add(AlertRecord(rule="spo2_low_sustained", patient=patient, metric="spo2",
                                            severity=("critical", "urgent", "warning")[i % 3], episode_start_ns=fired,
                                            fired_ns=fired, last_ns=fired, worst_value=86.0, threshold=90.0,
                                            message="SpO2 low", state="firing", episode_ns=fired, episodes=1))
                session.add(GatewayHealth(gateway=f"gw-{patient}", state="online", state_since=now, status_time=1.0,
                                          status_rank=0, last_seen=now, backlog=0))
                session.add(DeviceHealth(gateway=f"gw-{patient}", device=f"oxi-{patient}", patient=patient,
                                         link="connected", battery=90, last_reading=now, updated_at=now))
        for patient in patients:
            security.registry.add_gateway(Gateway(f"gw-{patient}", f"home of {patient}"))
            security.registry.bind_patient(f"gw-{patient}", patient)
        app = create_app(store, influx, security=security, clock=lambda: now)
        doctor = bearer(security, "dr.bench")
        family = bearer(security, "family.bench")
        iso = {days: (now - dt.timedelta(days=days)).isoformat().replace("+00:00", "Z") for days in (1, 7, 30)}
        end_iso = now.isoformat().replace("+00:00", "Z")
        views = [
            (f"worklist ({PATIENTS} patients)", "/api/v1/worklist", {}, doctor),
            *((f"series SpO2 {label} (300 points)", "/api/v1/patients/p000/series",
               {"metric": "spo2", "start": iso[days], "end": end_iso, "points": "300"}, doctor)
              for label, days in (("24 h", 1), ("7 d", 7), ("30 d", 30))),
            ("summary (7 days)", "/api/v1/patients/p000/summary", {"days": "7"}, doctor),
            ("today (family)", "/api/v1/patients/p000/today", {}, family),
        ]
        rows = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test",
                                     timeout=300.0) as client:
            for label, path, params, headers in views:
                cold = await _time(client, path, params, headers)
                warm = [await _time(client, path, params, headers) for _ in range(REPEATS)]
                median, worst = statistics.median(warm), max(warm)
                verdict = "met" if max(median, cold) <= GOAL_S else "missed"
                rows.append(f"| {label} | {cold * 1000:,.0f} ms | {median * 1000:,.0f} ms | {worst * 1000:,.0f} ms "
                            f"| {verdict} |")
        await influx.aclose()
    finally:
        store.close()
        influxd.stop()
        shutil.rmtree(run_dir, ignore_errors=True)  # millions of points: not left behind
    return "\n".join([
        "## Web views",
        "",
        f"{PATIENTS} patients, {DAYS} day{'s' if DAYS != 1 else ''}: {points:,} points in a real influxd "
        f"(written in {write_s:,.0f} s); "
        "an oximeter at 1 Hz (SpO2 and pulse) per patient, respiration every minute, blood pressure twice a "
        "day, a daily weighing, glucose every 5 minutes for a quarter of them. Each view is called in-process "
        f"through the whole app, once cold and then {REPEATS} times; goal: every page within "
        f"{GOAL_S:.0f} s.",
        "",
        "| view | cold | median | slowest | goal 1 s |",
        "|---|---|---|---|---|",
        *rows,
    ])


def run() -> str:
    """Run the web views benchmark; returns its Markdown section."""
    return asyncio.run(_main())
