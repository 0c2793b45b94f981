"""The load generator's pure parts: readings, batches, rate and latency accounting, error kinds."""

from __future__ import annotations

import json
from collections import Counter

import aiomqtt
import numpy as np
import pytest

from simulators.load import (
    LoadOptions,
    LoadTally,
    classify_error,
    gateway_ids,
    latency_percentiles,
    load_batch,
    load_readings,
    patient_id,
    readings_due,
    summarize,
)
from vitals.codec import decode_batch, encode_batch
from vitals.samples import Batch, Stream

T0 = 1_704_067_200_000_000_000


@pytest.mark.parametrize(("elapsed", "rate", "duration", "due"), [
    (-0.1, 5.0, 3.0, 0),
    (0.0, 5.0, 3.0, 1),  # the first reading is due at once
    (0.19, 5.0, 3.0, 1),
    (0.2, 5.0, 3.0, 2),
    (1.0, 5.0, 3.0, 6),
    (2.99, 5.0, 3.0, 15),
    (3.0, 5.0, 3.0, 15),  # the run holds [0, 3): 15 readings, not 16
    (99.0, 5.0, 3.0, 15),
    (10.0, 0.25, 10.0, 3),  # readings at 0, 4 and 8 s
])
def test_readings_due(elapsed: float, rate: float, duration: float, due: int) -> None:
    assert readings_due(elapsed, rate, duration) == due


def test_ids() -> None:
    assert gateway_ids("load-x", 3) == ["load-x-1", "load-x-2", "load-x-3"]
    assert patient_id("load-x-2", 4) == "load-x-2-p4"


def test_readings_are_deterministic_plausible_and_independent_of_batching() -> None:
    spo2, pulse = load_readings(5, "gw-1-p1", 0, 600, 10.0)
    again = load_readings(5, "gw-1-p1", 0, 250, 10.0), load_readings(5, "gw-1-p1", 250, 350, 10.0)
    assert np.array_equal(spo2, np.concatenate([again[0][0], again[1][0]]))
    assert np.array_equal(pulse, np.concatenate([again[0][1], again[1][1]]))
    assert spo2.min() >= 85 and spo2.max() <= 100 and 94 <= spo2.mean() <= 99
    assert pulse.min() >= 40 and pulse.max() <= 180 and 60 <= pulse.mean() <= 85
    assert np.array_equal(spo2, np.rint(spo2)) and np.array_equal(pulse, np.rint(pulse))
    other_seed = load_readings(6, "gw-1-p1", 0, 600, 10.0)[1]
    other_patient = load_readings(5, "gw-1-p2", 0, 600, 10.0)[1]
    assert not np.array_equal(pulse, other_seed) and not np.array_equal(pulse, other_patient)


def test_load_batch_is_two_regular_integer_streams() -> None:
    batch = load_batch("gw-1", 42, "gw-1-p1", 10, 5, rate_hz=5.0, origin_ns=T0, seed=0)
    spo2, pulse = load_readings(0, "gw-1-p1", 10, 5, 5.0)
    assert batch == Batch("gw-1", 42, "gw-1-p1", "gw-1-p1-ox", "generic.pulse_oximeter", (
        Stream.regular("spo2", "%", T0 + 2_000_000_000, 5.0, spo2, scale=1.0),
        Stream.regular("pulse_rate", "/min", T0 + 2_000_000_000, 5.0, pulse, scale=1.0),
    ))
    assert batch.sample_count == 10
    assert decode_batch(encode_batch(batch)) == batch
    with_epoch = load_batch("gw-1", 42, "gw-1-p1", 10, 5, rate_hz=5.0, origin_ns=T0, seed=0, epoch="e1")
    assert with_epoch.epoch == "e1" and decode_batch(encode_batch(with_epoch)) == with_epoch


def test_latency_percentiles_in_ms() -> None:
    assert latency_percentiles([]) is None
    latencies = [i / 1000.0 for i in range(1, 101)]  # 1 .. 100 ms
    assert latency_percentiles(latencies) == {"p50": 50.5, "p90": 90.1, "p99": 99.01, "max": 100.0}


class _CodeError(aiomqtt.MqttError):
    def __init__(self, rc: int, text: str) -> None:
        super().__init__(text)
        self.rc = rc


@pytest.mark.parametrize(("error", "kind"), [
    (aiomqtt.MqttError("[Errno 111] Connection refused"), "connection_refused"),
    (ConnectionRefusedError(111, "Connection refused"), "connection_refused"),
    (aiomqtt.MqttError("Operation timed out"), "timeout"),
    (TimeoutError(), "timeout"),
    (aiomqtt.MqttError("[code:135] Not authorized"), "not_authorized"),
    (aiomqtt.MqttError("[Errno -2] Name or service not known"), "unknown_host"),
    (aiomqtt.MqttError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls"),
    (aiomqtt.MqttError("Disconnected during message iteration"), "connection_lost"),
    (_CodeError(4, "Could not publish message"), "connection_lost"),
    (aiomqtt.MqttError("[code:151] Quota exceeded"), "mqtt_error"),
])
def test_classify_error(error: BaseException, kind: str) -> None:
    assert classify_error(error) == kind


def _options(**overrides: object) -> LoadOptions:
    base: dict[str, object] = {"mqtt_url": "mqtt://user:secret@broker:1883", "gateways": 3,
                               "patients_per_gateway": 2, "rate_hz": 5.0, "duration_s": 3.0}
    base.update(overrides)
    return LoadOptions(**base)  # type: ignore[arg-type]


def test_targets_follow_from_the_options() -> None:
    options = _options(batch_interval_s=0.5)
    assert options.target_values_per_s == 3 * 2 * 5.0 * 2
    assert options.target_messages_per_s == 3 * 2 / 0.5
    rare = _options(rate_hz=0.5, batch_interval_s=0.2)
    assert rare.target_messages_per_s == 3 * 2 * 0.5  # no batch without a new reading


@pytest.mark.parametrize("overrides", [
    {"gateways": 0}, {"patients_per_gateway": 0}, {"rate_hz": 0.0}, {"rate_hz": 5000.0}, {"duration_s": 0.0},
    {"batch_interval_s": -1.0}, {"qos": 2}, {"gateway_prefix": "bad prefix"},
])
def test_invalid_options_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _options(**overrides)


def test_report_of_a_clean_run() -> None:
    tally = LoadTally(published_values=180, published_messages=18, latencies_s=[0.001, 0.002, 0.003])
    report = summarize(_options(), tally, 3.0)
    assert report.ok
    data = json.loads(report.to_json())
    assert data == {
        "gateways": 3, "patients": 6, "rate_hz": 5.0, "duration_s": 3.0, "elapsed_s": 3.0, "qos": 1,
        "mqtt_url": "mqtt://broker:1883",  # no password in reports
        "target_values_per_s": 60.0, "achieved_values_per_s": 60.0,
        "target_messages_per_s": 6.0, "achieved_messages_per_s": 6.0,
        "published_values": 180, "published_messages": 18, "failed_values": 0, "unsent_values": 0,
        "latency_ms": {"p50": 2.0, "p90": 2.8, "p99": 2.98, "max": 3.0}, "errors": {},
    }
    table = report.table()
    assert "errors              none" in table
    assert "secret" not in table


def test_report_of_a_failed_run_counts_every_error_kind() -> None:
    tally = LoadTally(failed_values=10, unsent_values=50,
                      errors=Counter({"connection_refused": 4, "timeout": 1}))
    report = summarize(_options(qos=0), tally, 2.0)
    assert not report.ok
    assert report.achieved_values_per_s == 0.0
    assert report.latency_ms is None
    assert json.loads(report.to_json())["errors"] == {"connection_refused": 4, "timeout": 1}
    assert "connection_refused: 4, timeout: 1" in report.table()
    assert "10 values failed, 50 never sent" in report.table()
