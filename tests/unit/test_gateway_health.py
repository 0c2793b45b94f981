"""Gateway and device health: the status/events contract, how the store orders and applies them, the API."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.api import create_app
from cloud.registry import Gateway
from cloud.service import CloudConfig, ConfigError
from cloud.store import DeviceSeen, HealthUpdate, IngestCommit, Store, gateway_state
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import add_user, bearer, security_for
from vitals.health import (
    GatewayEvent,
    GatewayStatus,
    HealthMessageError,
    decode_event,
    decode_status,
    encode_status,
)

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _status(state: str, connection: float, time: float | None = None, **extra: Any) -> bytes:
    document = {"gateway": "gw-1", "state": state, "time": connection + 0.5 if time is None else time,
                "connection": connection, "version": "1.2.0", "epoch": "ep1"} | extra
    return json.dumps(document).encode()


# -- the contract ------------------------------------------------------------------------------------


def test_a_status_round_trips() -> None:
    status = GatewayStatus("gw-1", "offline", 10.5, 10.0, "1.2.0", "abc", 4)
    assert decode_status(encode_status(status), "gw-1") == status


@pytest.mark.parametrize(("payload", "message"), [
    (b"\xff", "not JSON"),
    (b"[]", "must be a JSON object"),
    (_status("sleeping", 1.0), "'state' must be one of online, offline"),
    (_status("online", 1.0, time=-1), "'time' must be Unix seconds"),
    (_status("online", 1.0, backlog=-3), "'backlog' must be a count"),
    (_status("online", 1.0, gateway="gw-2"), "names gateway 'gw-2' but came on 'gw-1'"),
    (_status("online", 1.0, version="x" * 65), "'version' must be text"),
    (b" " * 20_000, "over the 16384-byte limit"),
])
def test_a_bad_status_is_one_clear_error(payload: bytes, message: str) -> None:
    with pytest.raises(HealthMessageError, match=message):
        decode_status(payload, "gw-1")


def test_an_event_keeps_its_detail() -> None:
    event = decode_event(json.dumps({"gateway": "gw-1", "kind": "battery", "time": 5, "device": "ox-1",
                                     "patient": "pt-1", "percent": 41}).encode(), "gw-1")
    assert event == GatewayEvent("gw-1", "battery", 5.0, "ox-1", "pt-1", {"percent": 41})
    with pytest.raises(HealthMessageError, match="'device' must be an identifier"):
        decode_event(json.dumps({"gateway": "gw-1", "kind": "lost", "time": 5, "device": "a b"}).encode(), "gw-1")


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_the_one_error(payload: bytes) -> None:
    for decode in (decode_status, decode_event):
        with contextlib.suppress(HealthMessageError):
            decode(payload, "gw-1")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=8)


@given(st.dictionaries(st.sampled_from(["gateway", "state", "time", "connection", "kind", "device", "patient",
                                        "version", "epoch", "backlog", "percent"]), json_values, max_size=10))
def test_any_json_object_decodes_or_raises_the_one_error(document: dict[str, Any]) -> None:
    payload = json.dumps(document).encode()
    for decode in (decode_status, decode_event):
        with contextlib.suppress(HealthMessageError):
            decode(payload, "gw-1")


# -- the store ---------------------------------------------------------------------------------------


def _apply(store: Store, at: dt.datetime, *payloads: bytes, events: tuple[dict[str, Any], ...] = (),
           devices: tuple[DeviceSeen, ...] = ()) -> None:
    update = HealthUpdate([decode_status(p, "gw-1") for p in payloads],
                          [decode_event(json.dumps({"gateway": "gw-1", "time": 1.0} | e).encode(), "gw-1")
                           for e in events], devices)
    store.commit_ingest(IngestCommit(at=at, health=update))


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive UTC; PostgreSQL an aware time in the session's zone.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _gateway(store: Store) -> Any:
    (record,) = store.gateway_health("gw-1")
    return record


def test_birth_then_will_of_the_same_connection_is_offline_whatever_order_they_arrive_in(store: Store) -> None:
    birth = _status("online", 100.0, time=100.2)
    will = _status("offline", 100.0, time=100.0)  # made before the birth, when the connection began
    _apply(store, T0, will)
    _apply(store, T0 + dt.timedelta(seconds=1), birth)  # the birth reached another worker later
    assert _gateway(store).state == "offline"
    _apply(store, T0 + dt.timedelta(seconds=5), _status("online", 200.0))  # a new connection
    record = _gateway(store)
    assert record.state == "online" and _utc(record.state_since) == T0 + dt.timedelta(seconds=5)
    _apply(store, T0 + dt.timedelta(seconds=6), will)  # a stale will of the old connection
    assert _gateway(store).state == "online"


def test_statuses_in_one_micro_batch_are_applied_in_connection_order(store: Store) -> None:
    _apply(store, T0, _status("online", 300.0), _status("offline", 200.0), _status("online", 200.0))
    record = _gateway(store)
    assert record.state == "online" and record.status_time == 300.0
    assert record.version == "1.2.0" and record.epoch == "ep1"


def test_events_set_battery_link_backlog_and_drops(store: Store) -> None:
    _apply(store, T0, events=(
        {"kind": "battery", "device": "ox-1", "patient": "pt-1", "percent": 37},
        {"kind": "lost", "device": "ox-1", "patient": "pt-1", "reason": "disconnected"},
        {"kind": "heartbeat", "backlog": 12, "oldest_unsent_s": 40.5},
        {"kind": "spool_drop", "dropped": 250},
        {"kind": "spool_full", "dropped": 10},
        {"kind": "battery", "device": "ox-1", "percent": 400},  # implausible: ignored
    ))
    record = _gateway(store)
    assert (record.backlog, record.oldest_unsent_s, record.dropped_values, record.drop_events) == (12, 40.5, 260, 2)
    (device,) = store.device_health("gw-1")
    assert (device.battery, device.link, device.last_reason, device.patient) == (37, "lost", "disconnected", "pt-1")
    _apply(store, T0 + dt.timedelta(seconds=3), events=({"kind": "attached", "device": "ox-1"},))
    (device,) = store.device_health(patient="pt-1")
    assert device.link == "connected" and _utc(device.link_since) == T0 + dt.timedelta(seconds=3)


def test_data_dates_the_newest_reading_and_never_moves_it_back(store: Store) -> None:
    newest = T0 - dt.timedelta(seconds=2)
    _apply(store, T0, devices=(DeviceSeen("gw-1", "ox-1", "pt-1", newest),
                               DeviceSeen("gw-1", "ox-1", "pt-1", newest - dt.timedelta(minutes=5))))
    stale = DeviceSeen("gw-1", "ox-1", "pt-1", T0 - dt.timedelta(hours=3))
    _apply(store, T0 + dt.timedelta(seconds=30), devices=(stale,))
    (device,) = store.device_health("gw-1")
    assert _utc(device.last_reading) == newest
    record = _gateway(store)
    assert record.state == "online" and _utc(record.last_seen) == T0 + dt.timedelta(seconds=30)


def test_an_online_gateway_silent_past_the_limit_is_unknown(store: Store) -> None:
    _apply(store, T0, _status("online", 1.0))
    record = _gateway(store)
    assert gateway_state(record, T0 + dt.timedelta(seconds=899), 900) == "online"
    assert gateway_state(record, T0 + dt.timedelta(seconds=901), 900) == "unknown"
    _apply(store, T0, _status("offline", 1.0))
    assert gateway_state(_gateway(store), T0 + dt.timedelta(days=3), 900) == "offline"


# -- the API -----------------------------------------------------------------------------------------


async def test_the_gateways_endpoint_shows_state_devices_and_404(store: Store) -> None:
    _apply(store, T0, _status("online", 1.0, backlog=3),
           devices=(DeviceSeen("gw-1", "ox-1", "pt-1", T0 - dt.timedelta(seconds=10)),))
    now = T0 + dt.timedelta(seconds=20)
    influx = InfluxV1Client("http://127.0.0.1:9", "x")
    security = security_for(store, lambda: now)
    add_user(security, "admin", "admin")
    app = create_app(store, influx, clock=lambda: now, gateway_silent_s=15, security=security)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                                 headers=bearer(security, "admin")) as client:
        (listed,) = (await client.get("/api/v1/gateways")).json()
        assert listed["state"] == "unknown" and listed["reported_state"] == "online"
        assert listed["spool_backlog"] == 3 and listed["silent_s"] == 20.0
        assert listed["devices"][0]["reading_age_s"] == 30.0
        assert (await client.get("/api/v1/gateways", params={"state": "online"})).json() == []
        assert (await client.get("/api/v1/gateways/gw-1")).json()["gateway"] == "gw-1"
        assert (await client.get("/api/v1/gateways/gw-9")).status_code == 404
        assert (await client.get("/api/v1/gateways/bad%20id")).status_code == 422
        assert (await client.get("/api/v1/gateways", params={"state": "asleep"})).status_code == 422
        assert (await client.get("/api/v1/gateways", headers={"Authorization": ""})).status_code == 401
    await influx.aclose()


async def test_a_care_team_sees_the_gateways_its_patients_are_bound_to_and_no_other(store: Store) -> None:
    _apply(store, T0, _status("online", 1.0))
    other = HealthUpdate([decode_status(_status("online", 1.0, gateway="gw-2"), "gw-2")], [], ())
    store.commit_ingest(IngestCommit(at=T0, health=other))
    influx = InfluxV1Client("http://127.0.0.1:9", "x")
    security = security_for(store, lambda: T0)
    add_user(security, "dr.one", "doctor", care=["pt-1"])
    add_user(security, "dr.two", "doctor", care=["pt-2"])
    add_user(security, "family.one", "family", family=["pt-1"])
    security.registry.add_gateway(Gateway("gw-1", "home 1", ("pt-1",)))
    security.registry.add_gateway(Gateway("gw-2", "home 2", ("pt-2",)))
    app = create_app(store, influx, clock=lambda: T0, security=security)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        one = bearer(security, "dr.one")
        assert [g["gateway"] for g in (await client.get("/api/v1/gateways", headers=one)).json()] == ["gw-1"]
        assert (await client.get("/api/v1/gateways/gw-1", headers=one)).status_code == 200
        assert (await client.get("/api/v1/gateways/gw-2", headers=one)).status_code == 404  # as if never heard of
        two = bearer(security, "dr.two")
        assert [g["gateway"] for g in (await client.get("/api/v1/gateways", headers=two)).json()] == ["gw-2"]
        family = bearer(security, "family.one")
        assert (await client.get("/api/v1/gateways", headers=family)).status_code == 403
        assert (await client.get("/api/v1/gateways/gw-1", headers=family)).status_code == 403
    await influx.aclose()


# -- the worker's identity -----------------------------------------------------------------------------


def test_client_ids_differ_by_worker_and_stay_put_across_restarts() -> None:
    ids = {CloudConfig(worker_index=i).ingest_client_id() for i in range(3)}
    assert len(ids) == 3 and all(i.startswith("vitalbridge-ingest-") for i in ids)
    assert CloudConfig(worker_index=1).ingest_client_id() == CloudConfig(worker_index=1).ingest_client_id()
    assert CloudConfig(client_id="mine").ingest_client_id() == "mine"


def test_subscriptions_are_shared_unless_the_group_is_empty() -> None:
    assert CloudConfig().subscriptions() == ["$share/ingest/vb/v1/+/data", "$share/ingest/vb/v1/+/senml",
                                             "$share/ingest/vb/v1/+/status", "$share/ingest/vb/v1/+/events"]
    assert CloudConfig(shared_group="").subscriptions() == ["vb/v1/+/data", "vb/v1/+/senml", "vb/v1/+/status",
                                                            "vb/v1/+/events"]


def test_the_environment_carries_the_config_to_a_worker_process() -> None:
    config = CloudConfig(mqtt_url="mqtt://10.0.0.5:1884", max_messages=77, shared_group="g2")
    assert CloudConfig.from_env(config.to_env()) == config


@pytest.mark.parametrize(("environ", "message"), [
    ({"VB_INGEST_CLIENT_ID": "a/b"}, "VB_INGEST_CLIENT_ID"),
    ({"VB_INGEST_SHARED_GROUP": "a/b"}, "VB_INGEST_SHARED_GROUP"),
    ({"VB_INGEST_WORKER_INDEX": "-1"}, "VB_INGEST_WORKER_INDEX"),
    ({"VB_GATEWAY_SILENT_S": "0"}, "VB_GATEWAY_SILENT_S"),
])
def test_bad_scale_out_settings_name_their_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CloudConfig.from_env(environ)


# -- through the ingest processor ------------------------------------------------------------------------


async def test_status_and_events_pass_through_the_processor_and_bad_ones_are_dead_lettered(store: Store) -> None:
    from cloud.ingest import InboundMessage, IngestProcessor, Outcome
    from cloud.rules import RuleEngine, build_rules

    influx = InfluxV1Client("http://127.0.0.1:9", "x")
    processor = IngestProcessor(store, influx, RuleEngine(build_rules()), clock=lambda: int(T0.timestamp() * 1e9))
    event = json.dumps({"gateway": "gw-1", "kind": "battery", "time": 3, "device": "ox-1", "percent": 80}).encode()
    result = await processor.process([
        InboundMessage("vb/v1/gw-1/status", _status("online", 5.0)),
        InboundMessage("vb/v1/gw-1/events", event),
        InboundMessage("vb/v1/gw-1/status", b"{not json"),
        InboundMessage("vb/v1/gw-2/events", event),  # names gw-1 on gw-2's topic
    ])
    assert [d.outcome for d in result.dispositions] == [Outcome.HEALTH, Outcome.HEALTH, Outcome.REFUSED,
                                                        Outcome.REFUSED]
    assert {d.category for d in result.dispositions[2:]} == {"health"}
    assert _gateway(store).state == "online"
    assert store.device_health("gw-1")[0].battery == 80
    assert sorted(letter.reason.split(":")[0] for letter in store.dead_letters()) == ["health", "health"]
    await influx.aclose()


async def test_a_gateway_offline_past_the_rules_time_raises_its_patients_alert_on_the_tick(store: Store) -> None:
    from cloud.ingest import IngestProcessor
    from cloud.rules import RuleEngine, build_rules

    _apply(store, T0, _status("offline", 1.0),
           devices=(DeviceSeen("gw-1", "ox-1", "pt-1", T0 - dt.timedelta(minutes=1)),))
    rules = build_rules([{"type": "gateway_offline", "name": "gateway_offline", "offline_s": 1800,
                          "severity": "warning"}])
    influx = InfluxV1Client("http://127.0.0.1:9", "x")
    now = [T0 + dt.timedelta(minutes=29)]
    processor = IngestProcessor(store, influx, RuleEngine(rules), clock=lambda: int(now[0].timestamp() * 1e9))
    facts = store.patient_facts(now[0], 900)
    assert facts["pt-1"].gateway == "gw-1" and facts["pt-1"].gateway_status == "offline"
    await processor.tick()
    assert store.alerts() == []  # 29 minutes: not yet
    now[0] = T0 + dt.timedelta(minutes=31)
    await processor.tick()
    (alert,) = store.alerts()
    assert alert.patient == "pt-1" and alert.rule == "gateway_offline"
    await influx.aclose()
