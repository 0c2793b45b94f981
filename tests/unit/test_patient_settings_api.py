"""The settings API: read defaults, save versions as the signed-in clinician, 409 on a stale version, 422 naming
the field, history newest first, a preview replaying stored readings with the current and proposed settings."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from cloud.api import create_app
from cloud.rules import build_rules
from cloud.store import Store, open_store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, security_for

S = 10**9
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
RULES = [{"type": "threshold", "name": "spo2_low", "metric": "spo2", "direction": "below", "threshold": 90,
          "target": "low", "for_s": 60, "clear_threshold": 92, "clear_s": 60, "severity": "urgent"}]
URL = "/api/v1/patients/p1/settings"


def _stored_spo2() -> list[list[Any]]:
    # Three dips to 89 % over the last day, 10 minutes each, one reading a minute.
    start = int(NOW.timestamp()) * S - 86_400 * S
    rows = []
    for minute in range(0, 24 * 60, 1):
        value = 89.0 if minute % 480 < 10 else 95.0
        rows.append([start + minute * 60 * S, value, 0])
    return rows


def _influx(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/ping":
        return httpx.Response(204)
    params = json.loads(request.url.params.get("params", "{}"))
    if params.get("metric") == "spo2" and params.get("patient") == "p1":
        series = [{"name": "spo2", "columns": ["time", "value", "quality"], "values": _stored_spo2()}]
        return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series}]})
    return httpx.Response(200, json={"results": [{"statement_id": 0}]})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def api(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    security = security_for(store, lambda: NOW)
    add_user(security, "dr.lee", "doctor", care=["p1"])
    add_user(security, "nurse.kim", "nurse", care=["p1"])
    add_user(security, "dr.other", "doctor", care=["p2"])
    add_user(security, "family.one", "family", family=["p1"])
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(_influx))
    saved: list[tuple[str, int]] = []
    app = create_app(store, influx, clock=lambda: NOW, security=security, registry=CollectorRegistry(),
                     rules=build_rules(RULES), on_settings_saved=lambda p, v: saved.append((p, v)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                                 headers=bearer(security, "dr.lee")) as client:
        client.saved = saved  # type: ignore[attr-defined]
        client.security = security  # type: ignore[attr-defined]
        yield client
    await influx.aclose()


def _as(api: httpx.AsyncClient, username: str) -> dict[str, str]:
    return bearer(api.security, username)  # type: ignore[attr-defined]


def _change(low: float, expected: int, reason: str = "COPD: target 88-92 %") -> dict[str, Any]:
    return {"settings": {"conditions": ["copd"], "targets": {"spo2": {"low": low, "high": 92}}},
            "reason": reason, "expected_version": expected}


async def test_defaults_then_versions_saved_by_the_signed_in_clinician_and_history_newest_first(
        api: httpx.AsyncClient) -> None:
    empty = (await api.get(URL)).json()
    assert (empty["version"], empty["changed_by"], empty["changed_at"], empty["reason"]) == (0, None, None, "")
    assert empty["settings"]["targets"] == {} and empty["patient"] == "p1"
    first = await api.put(URL, json=_change(88, 0))
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["changed_by"]) == (1, "dr.lee")
    assert first.json()["changed_at"] == "2024-05-01T12:00:00Z"
    second = await api.put(URL, json=_change(87, 1, "lower after review"), headers=_as(api, "nurse.kim"))
    assert second.status_code == 200 and second.json()["changed_by"] == "nurse.kim"
    current = (await api.get(URL)).json()
    assert current["version"] == 2 and current["settings"]["targets"]["spo2"]["low"] == 87
    assert current["settings"]["version"] == "2"
    history = (await api.get(f"{URL}/history")).json()
    assert [(h["version"], h["changed_by"], h["reason"]) for h in history] == [
        (2, "nurse.kim", "lower after review"), (1, "dr.lee", "COPD: target 88-92 %")]
    assert api.saved == [("p1", 1), ("p1", 2)]  # type: ignore[attr-defined]


async def test_a_stale_expected_version_is_409_and_changes_nothing(api: httpx.AsyncClient) -> None:
    assert (await api.put(URL, json=_change(88, 0))).status_code == 200
    stale = await api.put(URL, json=_change(85, 0), headers=_as(api, "nurse.kim"))
    assert stale.status_code == 409
    assert stale.json()["error"] == {"code": "conflict", "message": "patient p1's settings are at version 1, not 0: "
                                                                    "read them again and reapply the change"}
    ahead = await api.put(URL, json=_change(85, 5))
    assert ahead.status_code == 409
    assert (await api.get(URL)).json()["settings"]["targets"]["spo2"]["low"] == 88


@pytest.mark.parametrize(("settings", "where"), [
    ({"targets": {"spo2": {"low": 95, "high": 90}}}, "body.settings.targets.spo2"),
    ({"targets": {"glitter": {"low": 1}}}, "body.settings.targets"),
    ({"time_zone": "Mars/Olympus"}, "body.settings.time_zone"),
    ({"spo2_scale": 3}, "body.settings.spo2_scale"),
    ({"colour": "blue"}, "body.settings.colour"),
    ({"rules": {"nope": {"threshold": 80}}}, "body.settings.rules.nope"),
    ({"rules": {"spo2_low": {"for_s": -1}}}, "body.settings.rules"),
    ({"rules": {"spo2_low": {"type": "trend"}}}, "body.settings.rules"),
])
async def test_invalid_settings_are_422_naming_the_field(api: httpx.AsyncClient, settings: dict[str, Any],
                                                         where: str) -> None:
    refused = await api.put(URL, json={"settings": settings, "reason": "r", "expected_version": 0})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid"
    assert refused.json()["error"]["message"].startswith(where), refused.json()
    assert (await api.get(URL)).json()["version"] == 0


async def test_a_reason_is_required(api: httpx.AsyncClient) -> None:
    refused = await api.put(URL, json={"settings": {}, "reason": "", "expected_version": 0})
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith("body.reason")


async def test_who_may_read_and_change(api: httpx.AsyncClient) -> None:
    family = _as(api, "family.one")
    assert (await api.get(URL, headers=family)).status_code == 403
    assert (await api.put(URL, json=_change(88, 0), headers=family)).status_code == 403
    other = _as(api, "dr.other")
    assert (await api.get(URL, headers=other)).status_code == 404
    assert (await api.put(URL, json=_change(88, 0), headers=other)).status_code == 404
    assert (await api.get(f"{URL}/history", headers=other)).status_code == 404
    assert (await api.get(URL, headers={"Authorization": "Bearer not-a-token"})).status_code == 401


async def test_preview_replays_stored_readings_with_current_and_proposed_settings(api: httpx.AsyncClient) -> None:
    plain = await api.post(f"{URL}/preview", json={"settings": {"targets": {"spo2": {"low": 85}}}, "days": 2})
    assert plain.status_code == 200, plain.text
    assert plain.json() == {"days": 2, "samples": 1440, "current_version": 0,
                            "current": {"alerts": 3, "by_rule": {"spo2_low": 3}},
                            "proposed": {"alerts": 0, "by_rule": {}}}
    await api.put(URL, json={"settings": {"targets": {"spo2": {"low": 85}}}, "reason": "r", "expected_version": 0})
    back = (await api.post(f"{URL}/preview", json={"settings": {}, "days": 1})).json()
    assert (back["current"]["alerts"], back["proposed"]["alerts"], back["current_version"]) == (0, 3, 1)
    too_long = await api.post(f"{URL}/preview", json={"settings": {}, "days": 365})
    assert too_long.status_code == 422 and too_long.json()["error"]["message"].startswith("body.days")
