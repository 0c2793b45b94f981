"""MQTT topic names, identifiers and broker URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitals.endpoints import MqttEndpoint, parse_mqtt_url
from vitals.samples import is_identifier
from vitals.topics import (
    ALL_DATA,
    ALL_EVENTS,
    ALL_SENML,
    ALL_STATUS,
    TopicError,
    command_topic,
    data_topic,
    events_topic,
    gateway_of,
    senml_topic,
    shared_data_subscription,
    status_topic,
)


def test_topic_names() -> None:
    assert data_topic("home-0001") == "vb/v1/home-0001/data"
    assert status_topic("home-0001") == "vb/v1/home-0001/status"
    assert events_topic("home-0001") == "vb/v1/home-0001/events"
    assert senml_topic("home-0001") == "vb/v1/home-0001/senml"
    assert ALL_SENML == "vb/v1/+/senml"
    assert command_topic("home-0001") == "vb/v1/home-0001/cmd/#"
    assert command_topic("home-0001", "config") == "vb/v1/home-0001/cmd/config"
    assert (ALL_DATA, ALL_STATUS, ALL_EVENTS) == ("vb/v1/+/data", "vb/v1/+/status", "vb/v1/+/events")
    assert shared_data_subscription() == "$share/ingest/vb/v1/+/data"
    assert shared_data_subscription("g2") == "$share/g2/vb/v1/+/data"


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "-lead", "x" * 65, "ünï"])
@pytest.mark.parametrize("builder", [data_topic, status_topic, events_topic, command_topic, senml_topic])
def test_invalid_gateway_ids_are_refused(builder: object, bad: str) -> None:
    with pytest.raises(TopicError, match="not a valid identifier"):
        builder(bad)  # type: ignore[operator]


@pytest.mark.parametrize("topic", ["vb/v1/gw-1/data", "vb/v1/gw-1/status", "vb/v1/gw-1/cmd/config"])
def test_gateway_of(topic: str) -> None:
    assert gateway_of(topic) == "gw-1"


@pytest.mark.parametrize(
    "topic", ["", "vb/v1/gw", "vb/v2/gw/data", "xx/v1/gw/data", "vb/v1/+/data", "vb/v1//data",
              "/vb/v1/gw/data", "vb/v1/a b/data"],
)
def test_gateway_of_refuses_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError, match="is not under vb/v1/"):
        gateway_of(topic)


_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@given(st.text(alphabet=_ID_CHARS, min_size=1, max_size=1), st.text(alphabet=_ID_CHARS + "_.-", max_size=63))
def test_gateway_round_trips_through_every_topic(first: str, rest: str) -> None:
    gateway = first + rest
    for topic in (data_topic(gateway), status_topic(gateway), events_topic(gateway), command_topic(gateway)):
        assert gateway_of(topic) == gateway


@given(st.text(max_size=80))
def test_identifiers_are_topic_and_tag_safe(text: str) -> None:
    if is_identifier(text):
        assert 1 <= len(text) <= 64
        assert not set(text) & set("/+#$ ,=\"'\\\n\t")
        assert text[0] not in "_.-"


def test_is_identifier_rejects_non_strings() -> None:
    assert not is_identifier(None)
    assert not is_identifier(b"gw")
    assert not is_identifier(12)
    assert is_identifier("a") and is_identifier("a" * 64) and not is_identifier("a" * 65)
    assert not is_identifier("gw\n")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://localhost", MqttEndpoint("localhost", 1883)),
        ("mqtts://broker.example.org", MqttEndpoint("broker.example.org", 8883, tls=True)),
        ("mqtt://127.0.0.1:18830", MqttEndpoint("127.0.0.1", 18830)),
        ("mqtt://user:p%40ss@host:1", MqttEndpoint("host", 1, username="user", password="p@ss")),
        ("mqtts://only-user@host", MqttEndpoint("host", 8883, tls=True, username="only-user")),
        ("mqtt://[::1]:1884", MqttEndpoint("::1", 1884)),
    ],
)
def test_parse_mqtt_url(url: str, expected: MqttEndpoint) -> None:
    assert parse_mqtt_url(url) == expected


def test_endpoint_url_hides_credentials() -> None:
    endpoint = parse_mqtt_url("mqtts://user:secret@host:8884")
    assert endpoint.url == "mqtts://host:8884"
    assert "secret" not in endpoint.url


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://host", "must start with mqtt:// or mqtts://"), ("mqtt://", "names no host"),
     ("mqtt://:1883", "names no host"), ("mqtt://host:99999", "invalid port"),
     ("mqtt://host:port", "invalid port"), ("host:1883", "must start with")],
)
def test_parse_mqtt_url_errors_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_mqtt_url(url)
