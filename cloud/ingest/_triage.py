"""Triage (pure): one message's topic and bytes in, an accepted batch or a refusal with its reason out."""

from __future__ import annotations

from dataclasses import dataclass

import cbor2

from vitals.codec import BatchTooLargeError, WireError, decode_batch
from vitals.samples import Batch, is_identifier
from vitals.senml import SenmlError, decode_senml
from vitals.topics import TopicError, gateway_of, senml_topic
from vitals.validate import check_density, check_plausible

__all__ = ["Accepted", "IngestLimits", "Refused", "peek_key", "triage"]


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What the ingest accepts from one message.

    ``max_values`` bounds the values of one batch (checked before they are unpacked);
    ``max_future_s`` how far ahead of the cloud's clock a gateway's clock may run.
    """

    max_values: int = 50_000
    max_future_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid batch, from the gateway whose topic it came on."""

    batch: Batch


@dataclass(frozen=True, slots=True)
class Refused:
    """A message refused for good: ``category`` (topic, decode, gateway, implausible, amplifying,
    timeseries, internal) and a reason a person can act on. ``key`` is the batch's
    ``(gateway, epoch, seq)`` where the bytes name one, so the gateway can be told."""

    category: str
    reason: str
    key: tuple[str, str, int] | None = None


def peek_key(payload: bytes) -> tuple[str, str, int] | None:
    """Best effort: the ``(gateway, epoch, seq)`` named by bytes that did not decode as a batch."""
    try:
        raw = cbor2.loads(payload)
    except Exception:  # any malformed bytes: there is simply no key to report
        return None
    if not isinstance(raw, dict):
        return None
    gateway, epoch, seq = raw.get("gw"), raw.get("ep", ""), raw.get("seq")
    if (not is_identifier(gateway) or not (epoch == "" or is_identifier(epoch))
            or isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 1 << 63):
        return None
    return str(gateway), str(epoch), seq


def _looks_like_senml(payload: bytes) -> bool:
    # A SenML pack is an array (JSON '[' or a CBOR array head); a native batch is a CBOR map.
    first = payload.lstrip(b" \t\r\n")[:1]
    return first == b"[" or (len(first) == 1 and 0x80 <= first[0] <= 0x9F)


def triage(topic: str, payload: bytes, *, now_ns: int, limits: IngestLimits = IngestLimits(),
           content_type: str = "") -> Accepted | Refused:
    """Decide whether a message on ``topic`` is a batch the cloud should store (pure; ``now_ns`` Unix ns).

    A native batch comes on ``vb/v1/{gateway}/data``, a SenML pack on ``vb/v1/{gateway}/senml``
    (``content_type`` is the MQTT 5 content type, where the sender set one); from there on both take
    the same checks.
    """
    try:
        topic_gateway = gateway_of(topic)
    except TopicError as exc:
        return Refused("topic", str(exc))
    if topic.rpartition("/")[2] == "senml":
        try:
            batch = decode_senml(payload, gateway=topic_gateway, now_ns=now_ns, content_type=content_type or None,
                                 max_values=limits.max_values)
        except SenmlError as exc:
            return Refused("decode", f"SenML: {exc}")
    else:
        try:
            batch = decode_batch(payload, max_values=limits.max_values)
        except WireError as exc:
            key = peek_key(payload)
            category = "amplifying" if isinstance(exc, BatchTooLargeError) else "decode"
            reason = str(exc) + (f" (SenML packs go on {senml_topic(topic_gateway)})" if _looks_like_senml(payload)
                                 else "")
            return Refused(category, reason, key if key is not None and key[0] == topic_gateway else None)
    key = (batch.gateway, batch.epoch, batch.seq)
    if batch.gateway != topic_gateway:
        return Refused("gateway", f"batch names gateway {batch.gateway!r} but came on the topic of {topic_gateway!r}")
    problems = check_density(batch)
    if problems:
        return Refused("amplifying", "; ".join(problems), key)
    problems = check_plausible(batch, now_ns=now_ns, max_future_ns=int(limits.max_future_s * 1e9))
    if problems:
        return Refused("implausible", "; ".join(problems), key)
    return Accepted(batch)
