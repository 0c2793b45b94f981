"""The agent and its spool: epoch on every batch, waveforms apart, quota drops reported, a full disk survived."""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytest

from device_profiles.registry import DecoderRegistry
from edge.agent import EdgeAgent
from edge.config import DeviceConfig, GatewayConfig
from edge.publisher import MqttPublisher, PublisherSettings
from edge.spool import BatchSpool
from edge.transports import TransportRegistry
from tests.agent_fakes import NoDecoderProfile, never_started
from vitals.codec import decode_batch
from vitals.samples import Stream

_T0 = 1_700_000_000 * 10**9


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture
def agent(spool: BatchSpool, events: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch) -> EdgeAgent:
    transports = TransportRegistry()
    transports.add("none", never_started)
    config = GatewayConfig(gateway="home-1", mqtt_url="mqtt://127.0.0.1:1", spool=":memory:", batch_interval_s=5.0,
                           devices=(DeviceConfig(id="ox-1", patient="p-1", profile="test.oximeter", transport="none"),))
    built = EdgeAgent(config, profiles={"test.oximeter": NoDecoderProfile()}, decoders=DecoderRegistry(),
                      transports=transports, clock_ns=lambda: _T0, spool=spool)
    monkeypatch.setattr(built.publisher, "event", lambda kind, **detail: events.append((kind, detail)))
    return built


def _spo2(*values: float, start_ns: int = _T0) -> Stream:
    return Stream("spo2", "%", [start_ns + i * 10**9 for i in range(len(values))], list(values), [0] * len(values))


def _ppg(count: int = 500, start_ns: int = _T0) -> Stream:
    noise = np.random.default_rng(start_ns).integers(-100_000, 100_000, count)  # incompressible: kB per batch
    return Stream.regular("ppg", "1", start_ns, 100.0, noise * 1.0, scale=1.0)


def _spooled(spool: BatchSpool) -> list[tuple[int, tuple[str, ...]]]:
    return [(seq, tuple(s.metric for s in decode_batch(payload).streams)) for seq, payload in spool.pending()]


def test_batches_carry_the_spool_epoch_and_waveforms_travel_apart(agent: EdgeAgent, spool: BatchSpool) -> None:
    agent.accept_stream("ox-1", _spo2(97, 96))
    agent.accept_stream("ox-1", _ppg())
    assert agent.tick() == 2
    assert _spooled(spool) == [(0, ("spo2",)), (1, ("ppg",))]
    assert {decode_batch(p).epoch for _, p in spool.pending()} == {spool.epoch}
    assert agent.publisher.settings.live_window_s == 15.0  # three batch intervals


def test_at_the_quota_waveforms_go_then_routine_numerics_and_each_drop_is_reported(
        agent: EdgeAgent, spool: BatchSpool, events: list[tuple[str, dict[str, Any]]]) -> None:
    agent.accept_stream("ox-1", _spo2(97, 96, 95))  # routine, seq 0
    agent.tick()
    agent.accept_stream("ox-1", _ppg())  # waveform, seq 1
    agent.tick()
    agent.accept_stream("ox-1", _spo2(85, 84, 83, start_ns=_T0 + 10**10))  # alert: below 90 %, seq 2
    agent.tick()
    spool.max_bytes = spool.stored_bytes  # full
    agent.accept_stream("ox-1", _spo2(97, 97, 97, start_ns=_T0 + 10**11))  # routine, seq 3: the waveform goes
    agent.tick()
    assert [seq for seq, _ in _spooled(spool)] == [0, 2, 3]
    assert events[-1] == ("spool_drop", {"seq": 1, "priority": "waveform", "dropped": 500, "created": _T0 / 1e9})
    spool.max_bytes = spool.stored_bytes
    agent.accept_stream("ox-1", _spo2(70, 71, 72, start_ns=_T0 + 10**12))  # alert, seq 4: the oldest routine goes
    agent.tick()
    assert [seq for seq, _ in _spooled(spool)] == [2, 3, 4]
    assert events[-1][0] == "spool_drop" and events[-1][1]["priority"] == "routine" and events[-1][1]["seq"] == 0
    assert (agent.stats.spool_evicted_batches, agent.stats.spool_evicted_samples) == (2, 503)
    spool.max_bytes = spool.stored_bytes
    agent.accept_stream("ox-1", _ppg(start_ns=_T0 + 10**13))  # a waveform may not push out numerics: refused
    agent.tick()
    assert [seq for seq, _ in _spooled(spool)] == [2, 3, 4]
    assert events[-1] == ("spool_full", {"device": "ox-1", "dropped": 500, "reason": "quota"})
    assert agent.stats.spool_full_drops == 500


def test_a_full_disk_is_a_logged_counted_drop_and_the_gateway_goes_on(
        agent: EdgeAgent, spool: BatchSpool, events: list[tuple[str, dict[str, Any]]],
        caplog: pytest.LogCaptureFixture) -> None:
    agent.accept_stream("ox-1", _spo2(97, 96))
    agent.tick()
    pages = int(spool._db.execute("PRAGMA page_count").fetchone()[0])
    spool._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    with caplog.at_level(logging.ERROR, logger="edge.agent"):
        for minute in range(1, 4):
            agent.accept_stream("ox-1", _ppg(4000, start_ns=_T0 + minute * 60 * 10**9))
            agent.tick()
    assert agent.stats.spool_full_drops == 3 * 4000
    assert [kind for kind, _ in events] == ["spool_full"] * 3 and events[0][1]["reason"] == "disk_full"
    assert "the disk holding the spool is full" in caplog.text
    assert spool.confirm(spool.epoch, [0]).stored == 1  # what was spooled still drains


def test_reconnects_of_many_gateways_spread_over_seconds(spool: BatchSpool) -> None:
    first = [MqttPublisher("gw", "mqtt://127.0.0.1:1", spool, clock_s=lambda: 0.0, rng=random.Random(seed))
             ._backoff.next_delay() for seed in range(200)]
    ceiling = PublisherSettings().reconnect_initial_s
    assert all(0.1 * ceiling <= delay <= ceiling for delay in first)
    assert max(first) - min(first) > 0.8 * ceiling  # not all back in the same instant


@pytest.mark.parametrize("bad", [{"ack_timeout_s": 0}, {"window": 0}, {"live_window_s": -1},
                                 {"session_expiry_s": -5}])
def test_nonsense_publisher_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="publisher settings"):
        PublisherSettings(**bad)
