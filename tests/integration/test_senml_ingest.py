"""SenML from a third-party gateway: mosquitto_pub -> real Mosquitto -> cloud ingest -> real influxd."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.integration.helpers import count_points, wait_for
from vitals.senml import CBOR_CONTENT_TYPE, encode_senml_cbor, encode_senml_json
from vitals.topics import senml_topic

pytestmark = pytest.mark.integration


def _mosquitto_pub(stack: Any, topic: str, payload: bytes, content_type: str | None = None) -> None:
    command = ["mosquitto_pub", "-h", stack.mosquitto.host, "-p", str(stack.mosquitto.port), "-q", "1",
               "-t", topic, "-s"]
    if content_type is not None:
        command += ["-V", "mqttv5", "-D", "publish", "content-type", content_type]
    subprocess.run(command, input=payload, check=True, timeout=10)


async def _values(cloud: Any, patient: str, metric: str) -> list[float]:
    series = await cloud.influx.query(
        f"SELECT \"value\" FROM \"vitals\" WHERE \"patient\" = '{patient}' AND \"metric\" = '{metric}'")
    return [row[1] for row in series[0]["values"]] if series else []


async def test_senml_packs_land_in_influxdb_once_and_bad_ones_are_dead_lettered(stack: Any, cloud: Any,
                                                                                unique_name: Any) -> None:
    gateway = unique_name("thirdparty")
    topic = senml_topic(gateway)
    start = time.time() - 600
    # JSON, told from its first byte: a thermometer in Fahrenheit and a scale in pounds.
    as_json = encode_senml_json([
        {"bn": "p-senml:thermo-1:", "bt": start, "n": "body_temperature", "u": "[degF]", "v": 98.6},
        {"n": "body_temperature", "t": 60, "u": "Cel", "v": 37.2},
        {"bn": "p-senml:thermo-1:", "n": "MDC_PULS_OXIM_SAT_O2", "u": "/", "t": 120, "v": 0.97},
    ])
    # CBOR with integer labels, said so by the MQTT 5 content type: a cuff in kPa, relative times.
    as_cbor = encode_senml_cbor([
        {"bn": "p-senml:cuff-1:", "bu": "kPa", "n": "bp_systolic", "t": -30, "v": 16},
        {"n": "bp_diastolic", "t": -30, "v": 10.6},
        {"n": "pulse_rate", "u": "beat/min", "t": -30, "v": 66},
    ])
    _mosquitto_pub(stack, topic, as_json)
    _mosquitto_pub(stack, topic, as_cbor, CBOR_CONTENT_TYPE)
    await wait_for(lambda: cloud.stats.stored_batches == 2)
    assert await count_points(cloud.influx) == 6
    assert await _values(cloud, "p-senml", "body_temperature") == [37.0, 37.2]
    assert await _values(cloud, "p-senml", "spo2") == [97.0]
    [systolic] = await _values(cloud, "p-senml", "bp_systolic")
    assert systolic == pytest.approx(120.01, abs=0.01)

    # Sent again (a QoS 1 redelivery, or the gateway's own retry): stored once, even where times are relative.
    _mosquitto_pub(stack, topic, as_json)
    _mosquitto_pub(stack, topic, as_cbor)  # no content type this time: told from the first byte
    await wait_for(lambda: cloud.stats.duplicates == 2)
    assert cloud.stats.stored_batches == 2
    assert await count_points(cloud.influx) == 6

    bad: list[tuple[bytes, str | None, str]] = [
        (b'[{"n":"p-senml:ox-1:spo2","u":"%EL","v":97}]', None, "unit '%EL' cannot be taken for spo2"),
        (b'[{"n":"p-senml:ox-1:spo2","v":97,"vendor_":1}]', None, "label 'vendor_' must be understood"),
        (b'[{"n":"spo2","v":97}]', None, "is not '{patient}:{device}:{metric}'"),
        (b"\x9f\x01", None, "not valid SenML CBOR"),
        # JSON said to be CBOR: the content type the sender set is what counts.
        (b'[{"n":"p-senml:ox-1:spo2","v":96}]', CBOR_CONTENT_TYPE, "not valid SenML CBOR"),
        (encode_senml_json([{"n": "p-senml:ox-1:spo2", "t": -5, "v": 130}]), None, "outside the plausible range"),
    ]
    for payload, content_type, _ in bad:
        _mosquitto_pub(stack, topic, payload, content_type)
    await wait_for(lambda: cloud.stats.rejected == len(bad))
    letters = {letter.payload: letter for letter in cloud.store.dead_letters()}
    for payload, _, reason in bad:
        assert letters[payload].topic == topic
        assert reason in letters[payload].reason
    assert dict(cloud.stats.rejected_by_reason) == {"decode": 5, "implausible": 1}
    assert await count_points(cloud.influx) == 6
