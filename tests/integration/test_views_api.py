"""The web app's JSON views over a real influxd: exact downsampled buckets, the worklist order on a designed
set of patients, the summary and the family's page, and the policy (404 for a patient of someone else)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.api._views import views_router
from cloud.auth import Role, install_error_handlers
from cloud.auth.policy import SecurityContext
from cloud.registry import Gateway, Patient
from cloud.rules import CarePlanItem, PatientSettings, TargetRange, TimeWindow
from cloud.store import AlertRecord, DeviceHealth, GatewayHealth, Store, open_store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, security_for
from vitalbridge.stack import LocalStack

pytestmark = pytest.mark.integration

S = 1_000_000_000
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
NOW_NS = int(NOW.timestamp()) * S
HOUR = 3600 * S


@dataclass
class Views:
    """The API over a fresh database and InfluxDB database, and helpers to fill them."""

    client: httpx.AsyncClient
    influx: InfluxV1Client
    store: Store
    security: SecurityContext

    async def write(self, patient: str, metric: str, points: list[tuple[int, float]], *,
                    measurement: str = "vitals", device: str = "dev1") -> None:
        await self.influx.write_lines([f"{measurement},device={device},metric={metric},patient={patient} "
                                       f"value={value!r},quality=0i {time_ns}" for time_ns, value in points])

    async def get(self, path: str, user: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=bearer(self.security, user))


@pytest.fixture
async def views(stack: LocalStack, tmp_path: Path, unique_name: Callable[[str], str]) -> AsyncIterator[Views]:
    store = open_store(f"sqlite:///{tmp_path / 'cloud.db'}")
    influx = InfluxV1Client(stack.influx_url, unique_name("vbviews"))
    await influx.create_database()
    security = security_for(store, lambda: NOW)
    app = create_app(store, influx, security=security, clock=lambda: NOW)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        yield Views(client, influx, store, security)
    await influx.aclose()
    store.close()


def _alert(patient: str, severity: str, state: str, rule: str = "news2", metric: str = "spo2",
           fired_ns: int = NOW_NS - HOUR) -> AlertRecord:
    return AlertRecord(rule=rule, patient=patient, metric=metric, severity=severity, episode_start_ns=fired_ns,
                       fired_ns=fired_ns, last_ns=fired_ns, worst_value=85.0, threshold=90.0, message="test alert",
                       state=state, episode_ns=fired_ns, episodes=1)


def _every(start_ns: int, count: int, step_s: float) -> list[int]:
    return [start_ns + int(i * step_s * S) for i in range(count)]


async def test_series_buckets_are_the_exact_min_mean_max(views: Views) -> None:
    add_user(views.security, "dr_a", Role.DOCTOR, care=["p1"])
    start = NOW_NS - 2 * HOUR
    values = [float(90 + (i // 60) % 7 + (i % 60) / 10) for i in range(7200)]  # 1 Hz for 2 h
    await views.write("p1", "spo2", list(zip(_every(start, 7200, 1), values, strict=True)))
    hour_ago = (NOW - dt.timedelta(hours=1)).isoformat()
    response = await views.get("/api/v1/patients/p1/series", "dr_a", metric="spo2", start=hour_ago,
                               end=NOW.isoformat(), points=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["metric"], body["unit"], body["interval_s"]) == ("spo2", "%", 60)
    assert len(body["points"]) == 60
    for index, point in enumerate(body["points"]):
        minute = values[3600 + index * 60: 3600 + (index + 1) * 60]
        assert point["t"] == (NOW - dt.timedelta(hours=1) + dt.timedelta(minutes=index)).isoformat().replace(
            "+00:00", "Z")
        assert (point["min"], point["max"]) == (min(minute), max(minute))
        assert point["mean"] == pytest.approx(sum(minute) / 60, abs=1e-9)
    assert body["thresholds"] == [{"label": "reference", "low": 94.0, "high": None}]
    # 30 days in at most 300 points: 3-hour buckets; the data fall in two of them, empty ones are left out.
    month = await views.get("/api/v1/patients/p1/series", "dr_a", metric="spo2",
                            start=(NOW - dt.timedelta(days=30)).isoformat(), end=NOW.isoformat())
    wide = month.json()
    assert wide["interval_s"] == 10_800
    assert [p["t"] for p in wide["points"]] == ["2026-03-10T09:00:00Z"]
    assert wide["points"][0]["min"] == min(values) and wide["points"][0]["max"] == max(values)
    assert wide["points"][0]["mean"] == pytest.approx(sum(values) / len(values), abs=1e-9)
    bad = await views.get("/api/v1/patients/p1/series", "dr_a", metric="nonsense")
    assert bad.status_code == 422 and "unknown metric" in bad.json()["error"]["message"]
    backwards = await views.get("/api/v1/patients/p1/series", "dr_a", metric="spo2", start=NOW.isoformat(),
                                end=hour_ago)
    assert backwards.status_code == 422


async def test_a_doctor_or_family_of_someone_else_finds_nothing(views: Views) -> None:
    add_user(views.security, "dr_a", Role.DOCTOR, care=["p1"])
    add_user(views.security, "dr_b", Role.DOCTOR, care=["p2"])
    add_user(views.security, "fam_b", Role.FAMILY, family=["p2"])
    for path in ("series?metric=spo2", "summary", "today", "waveform?metric=ecg&around=2026-03-10T12:00:00Z"):
        for user in ("dr_b", "fam_b"):
            response = await views.client.get(f"/api/v1/patients/p1/{path}", headers=bearer(views.security, user))
            assert response.status_code == 404, (path, user, response.text)
        assert (await views.client.get(f"/api/v1/patients/p2/{path}",
                                       headers=bearer(views.security, "fam_b"))).status_code == 200
    assert [row["patient"] for row in (await views.get("/api/v1/worklist", "fam_b")).json()] == ["p2"]
    assert (await views.client.get("/api/v1/worklist")).status_code == 401


async def test_worklist_ranks_the_designed_patients(views: Views) -> None:
    patients = ["p_fresh", "p_silent", "p_empty", "p_ack", "p_news", "p_crit"]
    add_user(views.security, "dr_a", Role.DOCTOR, care=patients)
    add_user(views.security, "dr_b", Role.DOCTOR, care=["p_crit", "p_other"])
    views.security.registry.add_patient(Patient("p_copd", "Copd Patient", conditions=("copd",)))
    views.security.registry.add_care_team_member("p_copd", "dr_a")
    recent = NOW_NS - 10 * 60 * S

    async def vitals(patient: str, at_ns: int, spo2: float, resp: float, pulse: float) -> None:
        await views.write(patient, "spo2", [(at_ns, spo2)])
        await views.write(patient, "respiratory_rate", [(at_ns, resp)])
        await views.write(patient, "pulse_rate", [(at_ns, pulse)])

    # p_news: normal a day ago, NEWS2 7 now (SpO2 91: 3, respiration 23: 2, pulse 120: 2).
    await vitals("p_news", NOW_NS - 25 * HOUR, 97, 16, 70)
    await vitals("p_news", recent, 91, 23, 120)
    await vitals("p_ack", recent, 94, 21, 80)  # NEWS2 3, and an acknowledged alert
    await vitals("p_crit", recent, 97, 16, 70)  # NEWS2 0 but a critical alert unacknowledged
    await vitals("p_fresh", recent, 97, 16, 70)
    await vitals("p_silent", NOW_NS - 30 * HOUR, 97, 16, 70)
    await vitals("p_copd", NOW_NS - 2 * HOUR, 96, 18, 72)
    with Session(views.store.engine) as session, session.begin():
        session.add_all([_alert("p_crit", "critical", "firing"), _alert("p_crit", "info", "firing", rule="r2"),
                         _alert("p_ack", "urgent", "acknowledged"),
                         _alert("p_fresh", "warning", "resolved", rule="r3")])
        session.add(GatewayHealth(gateway="gw1", state="online", state_since=NOW, status_time=1.0, status_rank=0,
                                  last_seen=NOW - dt.timedelta(minutes=1), backlog=3))
        session.add(DeviceHealth(gateway="gw1", device="oxi1", patient="p_fresh", link="connected", battery=80,
                                 last_reading=dt.datetime.fromtimestamp(recent / S, dt.UTC), updated_at=NOW))
    views.security.registry.add_gateway(Gateway("gw1", "home 1"))
    views.security.registry.bind_patient("gw1", "p_fresh")

    response = await views.get("/api/v1/worklist", "dr_a")
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [row["patient"] for row in rows] == ["p_crit", "p_news", "p_ack", "p_empty", "p_silent", "p_copd",
                                                "p_fresh"]
    by_id = {row["patient"]: row for row in rows}
    crit = by_id["p_crit"]
    assert crit["top_severity"] == "critical"
    assert crit["open_alerts"] == {"critical": 1, "urgent": 0, "warning": 0, "info": 1}
    news = by_id["p_news"]["news2"]
    assert (news["total"], news["band"], news["partial"], news["trend"]) == (7, "high", True, 7)
    assert by_id["p_ack"]["open_alerts"]["urgent"] == 1 and by_id["p_ack"]["top_severity"] is None
    assert by_id["p_empty"]["last_data_at"] is None and by_id["p_empty"]["hours_since_data"] is None
    assert by_id["p_empty"]["news2"] is None and by_id["p_empty"]["latest"] == {}
    assert by_id["p_silent"]["hours_since_data"] == 30.0 and by_id["p_silent"]["news2"] is None
    fresh = by_id["p_fresh"]
    assert fresh["latest"]["spo2"] == {"value": 97.0, "unit": "%", "time": "2026-03-10T11:50:00Z"}
    assert fresh["sparklines"]["spo2"] == [["2026-03-10T10:00:00Z", 97.0]]
    assert fresh["gateway"] == {"gateway": "gw1", "state": "online", "backlog": 3, "battery": None,
                                "last_seen": "2026-03-10T11:59:00Z"}
    assert fresh["devices"] == [{"device": "oxi1", "gateway": "gw1", "link": "connected", "battery": 80,
                                 "last_seen": "2026-03-10T11:50:00Z"}]
    assert fresh["adherence"] is None and fresh["open_alerts"]["warning"] == 0
    copd = await views.get("/api/v1/worklist", "dr_a", condition="copd")
    assert [row["patient"] for row in copd.json()] == ["p_copd"]
    team = await views.get("/api/v1/worklist", "dr_a", team="dr_b")
    assert [row["patient"] for row in team.json()] == ["p_crit"]  # dr_b's p_other is not dr_a's to see


async def test_summary_and_today_of_a_patient_with_spot_readings(views: Views) -> None:
    add_user(views.security, "dr_a", Role.DOCTOR, care=["p1", "p_empty"])
    add_user(views.security, "fam", Role.FAMILY, family=["p1"])
    day = 24 * HOUR
    # Blood pressure at 07:00 and 19:00 UTC on each of the last 7 days.
    for d in range(1, 8):
        morning, evening = NOW_NS - d * day - 5 * HOUR, NOW_NS - d * day + 7 * HOUR
        await views.write("p1", "bp_systolic", [(morning, 140.0), (evening, 130.0)])
        await views.write("p1", "bp_diastolic", [(morning, 90.0), (evening, 80.0)])
        await views.write("p1", "body_weight", [(morning, 80.0 + 0.1 * (8 - d))])
    # Glucose every 5 minutes over the last day: 6.0 mmol/L (108 mg/dL), with one hour at 15 mmol/L.
    glucose = [(t, 15.0 if i < 12 else 6.0) for i, t in enumerate(_every(NOW_NS - day, 288, 300))]
    await views.write("p1", "blood_glucose", glucose)
    await views.write("p1", "spo2", [(NOW_NS - HOUR, 92.0)])
    response = await views.get("/api/v1/patients/p1/summary", "dr_a", days=7)
    assert response.status_code == 200, response.text
    body = response.json()
    # The morning 7 days ago fell just before the period began.
    assert body["bp"]["am"] == {"systolic": 140.0, "diastolic": 90.0, "n": 6, "n_diastolic": 6}
    assert body["bp"]["pm"]["systolic"] == 130.0 and body["bp"]["all"]["n"] == 13
    ranges = body["glucose"]["time_in_ranges"]
    assert ranges == {"very_low": 0.0, "low": 0.0, "in_range": 276 / 288, "high": 0.0, "very_high": 12 / 288}
    assert body["glucose"]["unit"] == "mg/dL" and len(body["glucose"]["agp"]) == 24
    assert body["glucose"]["agp"][0]["p50"] == pytest.approx(6.0 * 18.0182, abs=0.1)
    weight = body["weight"]
    assert weight["latest"] == pytest.approx(80.7)
    assert weight["time"] == "2026-03-09T07:00:00Z"
    assert weight["change_1d"] == pytest.approx(0.1) and weight["change_3d"] == pytest.approx(0.3)
    assert weight["change_7d"] is None  # nobody weighed 8 days ago
    assert body["latest"]["spo2"]["value"] == 92.0

    today = (await views.get("/api/v1/patients/p1/today", "fam")).json()
    assert today["patient"] == "p1" and today["display_name"] == "Patient p1" and today["date"] == "2026-03-10"
    assert [(r["metric"], r["value"], r["status"]) for r in today["readings"]] == [
        ("blood_glucose", 6.0, "normal"), ("spo2", 92.0, "low")]
    assert today["gateway"] is None and today["devices"] == [] and today["due"] == []

    empty = (await views.get("/api/v1/patients/p_empty/summary", "dr_a")).json()
    assert {k: empty[k] for k in ("bp", "glucose", "weight", "news2", "adherence", "latest")} == {
        "bp": None, "glucose": None, "weight": None, "news2": None, "adherence": None, "latest": {}}
    nothing = (await views.get("/api/v1/patients/p_empty/today", "dr_a")).json()
    assert nothing["readings"] == [] and nothing["gateway"] is None
    assert (await views.get("/api/v1/patients/p_empty/series", "dr_a", metric="spo2")).json()["points"] == []


async def test_waveform_strip_around_an_event(views: Views) -> None:
    add_user(views.security, "dr_a", Role.DOCTOR, care=["p1"])
    start = NOW_NS - 60 * S
    await views.write("p1", "ecg", [(t, round(i * 0.001, 3)) for i, t in enumerate(_every(start, 250 * 20, 1 / 250))],
                      measurement="waveforms")
    around = (NOW - dt.timedelta(seconds=50)).isoformat()
    response = await views.get("/api/v1/patients/p1/waveform", "dr_a", metric="ecg", around=around, seconds=4)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["unit"], body["rate_hz"], len(body["values"])) == ("mV", 250.0, 1000)
    assert body["start"] == "2026-03-10T11:59:08Z" and body["values"][0] == pytest.approx(2.0)
    wrong = await views.get("/api/v1/patients/p1/waveform", "dr_a", metric="spo2", around=around)
    assert wrong.status_code == 422


async def test_settings_shape_the_views(stack: LocalStack, tmp_path: Path, unique_name: Callable[[str], str]) -> None:
    # The views judge a patient by the settings views_router is given: time zone, targets, care plan.
    settings = PatientSettings(
        time_zone="Asia/Shanghai", targets={"spo2": TargetRange(low=88, high=92)},
        care_plan=(CarePlanItem(metric="bp_systolic", windows=(TimeWindow(start="07:00", end="10:00"),
                                                               TimeWindow(start="18:00", end="21:00"))),))
    store = open_store(f"sqlite:///{tmp_path / 'cloud.db'}")
    influx = InfluxV1Client(stack.influx_url, unique_name("vbviews"))
    await influx.create_database()
    security = security_for(store, lambda: NOW)
    app = FastAPI()
    app.state.security = security
    install_error_handlers(app)
    app.include_router(views_router(store, influx, lambda: NOW, settings=lambda patient: settings))
    add_user(security, "dr_a", Role.DOCTOR, care=["p1"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        views = Views(client, influx, store, security)
        # Now is 20:00 in Shanghai (UTC+8). A morning reading (08:30 local) on each of the last 7 days, and
        # one this evening (19:00 local).
        mornings = [NOW_NS - d * 24 * HOUR - 11 * HOUR - 30 * 60 * S for d in range(7)]
        await views.write("p1", "bp_systolic", [(t, 130.0) for t in [*mornings, NOW_NS - HOUR]])
        await views.write("p1", "spo2", [(NOW_NS - HOUR, 90.0)])
        worklist = (await views.get("/api/v1/worklist", "dr_a")).json()
        # Windows wholly in the last 7 days: 6 whole days of two, and this morning's; this evening's is open.
        assert worklist[0]["adherence"] == {"expected": 13, "received": 7, "ratio": round(7 / 13, 3), "days": 7}
        today = (await views.get("/api/v1/patients/p1/today", "dr_a")).json()
        assert today["date"] == "2026-03-10" and today["time_zone"] == "Asia/Shanghai"
        assert today["due"] == [
            {"metric": "bp_systolic", "window": "07:00-10:00", "done": True, "state": "done"},
            {"metric": "bp_systolic", "window": "18:00-21:00", "done": True, "state": "done"}]
        spo2 = [r for r in today["readings"] if r["metric"] == "spo2"]
        assert spo2 == [{"metric": "spo2", "value": 90.0, "unit": "%", "time": "2026-03-10T11:00:00Z",
                         "status": "normal"}]  # within the patient's 88-92 % target, though below the usual 94
        series = (await views.get("/api/v1/patients/p1/series", "dr_a", metric="spo2")).json()
        assert series["thresholds"] == [{"label": "target", "low": 88.0, "high": 92.0}]
        summary = (await views.get("/api/v1/patients/p1/summary", "dr_a")).json()
        assert summary["bp"]["am"]["n"] == 7 and summary["bp"]["pm"]["n"] == 1  # local mornings and evenings
    await influx.aclose()
    store.close()
