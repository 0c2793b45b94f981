"""``/fhir`` and the export against a real influxd: date-prefix searches, paging that neither loses nor repeats a
value, waveform windows, and a week of a demo patient exported (by the command and the endpoint) that parses."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.api import create_app
from cloud.registry import Device, Gateway, Patient
from cloud.store import Store, open_store
from cloud.timeseries import InfluxV1Client
from simulators.scenarios import load_scenario
from tests.auth_helpers import add_user, bearer, security_for
from tests.fhir_helpers import parse_all, parse_resource
from vitalbridge.demo import DEMO_PATIENTS
from vitalbridge.stack import LocalStack

pytestmark = pytest.mark.integration

S = 10**9
START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
START_NS = int(START.timestamp()) * S
WEEK_S = 7 * 86_400
PATIENT = DEMO_PATIENTS[1][0]  # the demo's hypertension patient: a home cuff twice a day
SCENARIO = DEMO_PATIENTS[1][1]
ECG_HZ = 250
ECG_SECONDS = 30


@dataclass
class Data:
    lines: list[str]
    spo2_times: list[int]
    bp_times: set[int]
    numeric_values: int
    ecg_samples: int


def _week() -> Data:
    """A week of the demo patient's cuff and scale (the scenario), a pulse oximeter once a minute, 30 s of ECG."""
    chunk = load_scenario(SCENARIO).start(START_NS, seed=7).advance(WEEK_S)
    devices = {"bp_systolic": "cuff", "bp_diastolic": "cuff", "bp_mean": "cuff", "pulse_rate": "cuff",
               "body_weight": "scale"}
    points: dict[tuple[str, str, int], float] = {}  # InfluxDB keeps one point per series and time
    for metric, (times, values) in chunk.numerics.items():
        for time_ns, value in zip(times.tolist(), values.tolist(), strict=True):
            points[(devices[metric], metric, int(time_ns))] = float(value)
    spo2_times = [START_NS + minute * 60 * S for minute in range(WEEK_S // 60)]
    for index, time_ns in enumerate(spo2_times):
        points[("ox-1", "spo2", time_ns)] = 95.0 + index % 4
    lines = [f"vitals,device={device},metric={metric},patient={PATIENT} value={value!r},quality=0i {time_ns}"
             for (device, metric, time_ns), value in points.items()]
    ecg_start = START_NS + 86_400 * S + 5 * S // 2  # not on a window boundary
    lines += [f"waveforms,device=patch-1,metric=ecg,patient={PATIENT} value={(i % 50) / 100!r},quality=0i "
              f"{ecg_start + i * S // ECG_HZ}" for i in range(ECG_HZ * ECG_SECONDS)]
    systolic = {t for (_, m, t) in points if m == "bp_systolic"}
    diastolic = {t for (_, m, t) in points if m == "bp_diastolic"}
    return Data(lines, spo2_times, systolic & diastolic, len(points), ECG_HZ * ECG_SECONDS)


@pytest.fixture(scope="module")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("fhir-influx"), mqtt=False) as stack:
        yield stack


@pytest.fixture(scope="module")
def data() -> Data:
    return _week()


@dataclass
class World:
    client: httpx.AsyncClient
    doctor: dict[str, str]
    other_doctor: dict[str, str]
    database_url: str
    influx_url: str
    influx_db: str
    store: Store


@pytest.fixture
async def world(influxd: LocalStack, data: Data, tmp_path: Path) -> AsyncIterator[World]:
    database_url = f"sqlite:///{tmp_path / 'cloud.db'}"
    store = open_store(database_url)
    security = security_for(store)
    security.registry.add_patient(Patient(PATIENT, "Demo Patient Two", dt.date(1961, 3, 14)))
    security.registry.add_gateway(Gateway("demo-home", "demo home", (PATIENT,)))
    for device, profile in (("cuff", "generic.bp_cuff"), ("scale", "generic.weight_scale"),
                            ("ox-1", "generic.pulse_oximeter")):
        security.registry.add_device(Device(device, PATIENT, "demo-home", profile))
    add_user(security, "dr.fhir", "doctor", care=[PATIENT])
    add_user(security, "dr.else", "doctor", care=["someone-else"])
    influx_db = f"fhir_{tmp_path.name.replace('-', '_')}"[:60]
    influx = InfluxV1Client(influxd.influx_url, influx_db)
    await influx.create_database()
    await influx.write_lines(data.lines)
    app = create_app(store, influx, security=security)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ehr.test") as client:
        yield World(client, bearer(security, "dr.fhir"), bearer(security, "dr.else"), database_url,
                    influxd.influx_url, influx_db, store)
    await influx.aclose()
    store.close()


async def _all_pages(world: World, params: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    resources: list[dict[str, Any]] = []
    pages = 0
    url: str | None = "/fhir/Observation"
    query: dict[str, str] | None = params
    while url is not None:
        response = await world.client.get(url, params=query, headers=world.doctor)
        assert response.status_code == 200, response.text
        bundle = response.json()
        pages += 1
        resources += [entry["resource"] for entry in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        query = None
    return resources, pages


async def test_date_prefixes_and_paging_lose_and_repeat_nothing(world: World, data: Data) -> None:
    day2, day3 = (START + dt.timedelta(days=1)).date(), (START + dt.timedelta(days=2)).date()
    params = {"patient": f"Patient/{PATIENT}", "code": "http://loinc.org|59408-5", "date": f"ge{day2}",
              "_count": "500"}
    found, pages = await _all_pages(world, {**params, "date": [f"ge{day2}", f"lt{day3}"]})  # type: ignore[dict-item]
    assert pages == 3 and len(found) == 1440 == len({r["id"] for r in found})
    expected = [t for t in data.spo2_times if START_NS + 86_400 * S <= t < START_NS + 2 * 86_400 * S]
    assert [r["effectiveDateTime"] for r in found] == [
        dt.datetime.fromtimestamp(t // S, dt.UTC).isoformat().replace("+00:00", "Z") for t in expected]
    parse_all(found[:50])
    # ``gt`` a day is from the next day on; ``le`` a minute includes that whole minute.
    late, _ = await _all_pages(world, {**params, "date": [f"gt{day2}", f"le{day3}T00:04"], "_count": "2"})  # type: ignore[dict-item]
    assert [r["effectiveDateTime"] for r in late] == [f"{day3}T00:0{m}:00Z" for m in range(5)]


async def test_every_value_of_the_week_comes_out_once_and_blood_pressure_as_panels(world: World,
                                                                                   data: Data) -> None:
    everything, pages = await _all_pages(world, {"patient": PATIENT, "_count": "1000"})
    assert pages >= data.numeric_values // 1000
    carried = sum(len(r.get("component", [r])) for r in everything)
    assert carried == data.numeric_values and len({r["id"] for r in everything}) == len(everything)
    panels, _ = await _all_pages(world, {"patient": PATIENT, "code": "85354-9", "_count": "5"})
    assert len(panels) == len(data.bp_times) > 0
    assert all(r["code"]["coding"][0]["code"] == "85354-9" and len(r["component"]) >= 2 for r in panels)
    parse_all(panels)


async def test_waveforms_come_as_sampled_data_windows(world: World, data: Data) -> None:
    windows, pages = await _all_pages(world, {"patient": PATIENT, "code": "ecg", "_count": "2"})
    parse_all(windows)
    assert len(windows) == ECG_SECONDS // 10 + 1 and pages == 2
    samples = sum(len(r["valueSampledData"]["data"].split()) for r in windows)
    assert samples == data.ecg_samples and all(r["valueSampledData"]["period"] == 4.0 for r in windows)
    exported = await world.client.get(f"/fhir/Patient/{PATIENT}/$everything", headers=world.doctor, params={
        "start": "2024-05-02", "end": "2024-05-02", "_waveforms": "true", "_outputFormat": "ndjson"})
    resources = [json.loads(line) for line in exported.text.splitlines()]
    assert [r for r in resources if "valueSampledData" in r] == windows


async def test_a_doctor_off_the_care_team_reads_nothing(world: World) -> None:
    response = await world.client.get("/fhir/Observation", params={"patient": PATIENT}, headers=world.other_doctor)
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def _export(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitalbridge.cli", "cloud", "export-fhir", "--database-url", world.database_url,
         "--influx-url", world.influx_url, "--influx-db", world.influx_db, *args],
        capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
async def test_a_week_of_a_demo_patient_exports_as_a_bundle_that_parses(world: World, data: Data,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "week.json"
    done = _export(world, "--patient", PATIENT, "--start", "2024-05-01", "--end", "2024-05-07", "--out", str(out))
    assert done.returncode == 0, done.stderr
    bundle = json.loads(out.read_text())
    model = parse_resource(bundle)
    assert model.type == "transaction"
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("Device") == 4  # the gateway and three devices
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert sum(len(r.get("component", [r])) for r in observations) == data.numeric_values
    assert len({entry["request"]["url"] for entry in bundle["entry"]}) == len(bundle["entry"])
    assert f"{len(observations)} Observation" in done.stdout

    ndjson = tmp_path / "week"
    done = _export(world, "--patient", PATIENT, "--start", "2024-05-01", "--end", "2024-05-07", "--out", str(ndjson),
                   "--format", "ndjson")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in ndjson.iterdir()) == ["Device.ndjson", "Observation.ndjson", "Patient.ndjson"]
    lines = (ndjson / "Observation.ndjson").read_text().splitlines()
    assert [json.loads(line) for line in lines] == observations  # the same resources, parsed above

    streamed = await world.client.get(f"/fhir/Patient/{PATIENT}/$everything",
                                      params={"start": "2024-05-01", "end": "2024-05-07"}, headers=world.doctor)
    assert streamed.status_code == 200
    assert json.loads(streamed.text)["entry"] == bundle["entry"]
