"""MQTT topic names shared by the gateway and the cloud (MQTT 5, QoS 1)."""

from __future__ import annotations

from vitals.samples import is_identifier

__all__ = [
    "ALL_DATA",
    "ALL_EVENTS",
    "ALL_SENML",
    "ALL_STATUS",
    "TOPIC_ROOT",
    "TopicError",
    "ack_topic",
    "command_topic",
    "config_topic",
    "data_topic",
    "events_topic",
    "gateway_of",
    "senml_topic",
    "shared_data_subscription",
    "shared_subscription",
    "status_topic",
]

TOPIC_ROOT = "vb/v1"
ALL_DATA = f"{TOPIC_ROOT}/+/data"
ALL_STATUS = f"{TOPIC_ROOT}/+/status"
ALL_EVENTS = f"{TOPIC_ROOT}/+/events"
ALL_SENML = f"{TOPIC_ROOT}/+/senml"


class TopicError(ValueError):
    """A topic or gateway id that does not fit the VitalBridge topic tree."""


def _checked(gateway: str) -> str:
    if not is_identifier(gateway):
        raise TopicError(f"gateway id {gateway!r} is not a valid identifier")
    return gateway


def data_topic(gateway: str) -> str:
    """Topic where ``gateway`` publishes its batches."""
    return f"{TOPIC_ROOT}/{_checked(gateway)}/data"


def status_topic(gateway: str) -> str:
    """Retained birth/death topic of ``gateway`` (also its last will)."""
    return f"{TOPIC_ROOT}/{_checked(gateway)}/status"


def senml_topic(gateway: str) -> str:
    """Topic where a third-party ``gateway`` publishes SenML packs (RFC 8428, JSON or CBOR; see :mod:`vitals.senml`)."""
    return f"{TOPIC_ROOT}/{_checked(gateway)}/senml"


def events_topic(gateway: str) -> str:
    """Topic for device attached/lost, battery and local alarm events of ``gateway``."""
    return f"{TOPIC_ROOT}/{_checked(gateway)}/events"


def command_topic(gateway: str, command: str = "#") -> str:
    """Cloud-to-gateway command topic (``#`` for the whole subtree)."""
    return f"{TOPIC_ROOT}/{_checked(gateway)}/cmd/{command}"


def ack_topic(gateway: str) -> str:
    """Where the cloud tells ``gateway`` which batches it has stored (see :mod:`vitals.acks`)."""
    return command_topic(gateway, "ack")


def shared_subscription(topic_filter: str, group: str = "ingest") -> str:
    """The MQTT 5 shared subscription that spreads ``topic_filter``'s messages over a group's workers."""
    return f"$share/{group}/{topic_filter}"

def config_topic(gateway: str) -> str:
    """Where the cloud keeps, retained, the thresholds of ``gateway``'s patients (see
    :mod:`vitals.patient_thresholds`)."""
    return command_topic(gateway, "config")


def shared_data_subscription(group: str = "ingest") -> str:
    """Shared subscription that spreads data topics over N ingest workers."""
    return shared_subscription(ALL_DATA, group)


def gateway_of(topic: str) -> str:
    """Return the gateway id named by a ``vb/v1/{gateway}/...`` topic."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != TOPIC_ROOT or not is_identifier(parts[2]):
        raise TopicError(f"topic {topic!r} is not under {TOPIC_ROOT}/{{gateway}}/")
    return parts[2]
