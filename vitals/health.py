"""What a gateway says about itself: its status (birth, goodbye, last will) and its events.

The gateway publishes a retained JSON status on ``vb/v1/{gateway}/status`` when it connects
(``online``), when it leaves cleanly (``offline``), and the broker publishes its last will
(``offline``) when the connection dies. Events on ``vb/v1/{gateway}/events`` say what happened to a
device (status with battery, link lost, connected) or to the spool (full, drops), and a periodic
``heartbeat`` carries the spool backlog. The cloud decodes both with :func:`decode_status` and
:func:`decode_event`; anything else is one :class:`HealthMessageError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from vitals.samples import is_identifier

__all__ = [
    "GATEWAY_STATES",
    "MAX_HEALTH_MESSAGE",
    "GatewayEvent",
    "GatewayStatus",
    "HealthMessageError",
    "decode_event",
    "decode_status",
    "encode_status",
]

GATEWAY_STATES = ("online", "offline")
"""What a status message may say; ``unknown`` is the cloud's own verdict on a silent gateway."""

MAX_HEALTH_MESSAGE = 16_384
"""Bytes a status or event message may have."""


class HealthMessageError(ValueError):
    """A status or event message that is not what the contract says; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """One status message: ``time`` is the gateway's clock (Unix s) when it made the message.

    ``connection`` is when the connection the message belongs to began (gateway clock): a last
    will is made before the birth of the same connection, so statuses are ordered by connection,
    then online before offline. The cloud takes the time it received a will as the moment the
    gateway went offline.
    """

    gateway: str
    state: Literal["online", "offline"]
    time: float
    connection: float | None = None
    version: str = ""
    epoch: str = ""
    backlog: int | None = None


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """One event: ``kind`` (e.g. ``device_status``, ``link_lost``, ``spool_full``, ``heartbeat``), the
    device it concerns (if any), and the rest of the message as ``detail``."""

    gateway: str
    kind: str
    time: float
    device: str | None = None
    patient: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def encode_status(status: GatewayStatus) -> bytes:
    """The JSON a gateway publishes for ``status``."""
    document: dict[str, Any] = {"gateway": status.gateway, "state": status.state, "time": status.time,
                                "version": status.version, "epoch": status.epoch}
    if status.connection is not None:
        document["connection"] = status.connection
    if status.backlog is not None:
        document["backlog"] = status.backlog
    return json.dumps(document).encode()


def _document(payload: bytes, what: str) -> dict[str, Any]:
    if len(payload) > MAX_HEALTH_MESSAGE:
        raise HealthMessageError(f"{what} message of {len(payload)} bytes is over the {MAX_HEALTH_MESSAGE}-byte limit")
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HealthMessageError(f"{what} message is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise HealthMessageError(f"{what} message must be a JSON object, not {type(document).__name__}")
    return document


def _identifier(document: dict[str, Any], key: str, what: str, *, required: bool) -> str | None:
    value = document.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not is_identifier(value):
        raise HealthMessageError(f"{what} message: {key!r} must be an identifier, got {value!r}")
    return value


def _time(document: dict[str, Any], what: str, key: str = "time") -> float:
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise HealthMessageError(f"{what} message: {key!r} must be Unix seconds (a number >= 0), got {value!r}")
    return float(value)


def _text(document: dict[str, Any], key: str, what: str, limit: int = 64) -> str:
    value = document.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise HealthMessageError(f"{what} message: {key!r} must be text of at most {limit} characters")
    return value


def decode_status(payload: bytes, gateway: str) -> GatewayStatus:
    """Decode a status message published on ``gateway``'s status topic."""
    document = _document(payload, "status")
    named = _identifier(document, "gateway", "status", required=True)
    if named != gateway:
        raise HealthMessageError(f"status message names gateway {named!r} but came on {gateway!r}'s topic")
    state = document.get("state")
    if state not in GATEWAY_STATES:
        raise HealthMessageError(f"status message: 'state' must be one of {', '.join(GATEWAY_STATES)}, "
                                 f"got {state!r}")
    backlog = document.get("backlog")
    if backlog is not None and (isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0):
        raise HealthMessageError(f"status message: 'backlog' must be a count >= 0, got {backlog!r}")
    connection = _time(document, "status", "connection") if document.get("connection") is not None else None
    return GatewayStatus(gateway, state, _time(document, "status"), connection, _text(document, "version", "status"),
                         _text(document, "epoch", "status"), backlog)


def decode_event(payload: bytes, gateway: str) -> GatewayEvent:
    """Decode an event message published on ``gateway``'s events topic."""
    document = _document(payload, "event")
    named = _identifier(document, "gateway", "event", required=True)
    if named != gateway:
        raise HealthMessageError(f"event message names gateway {named!r} but came on {gateway!r}'s topic")
    kind = document.get("kind")
    if not isinstance(kind, str) or not is_identifier(kind):
        raise HealthMessageError(f"event message: 'kind' must be an identifier, got {kind!r}")
    device = _identifier(document, "device", "event", required=False)
    patient = _identifier(document, "patient", "event", required=False)
    detail = {key: value for key, value in document.items()
              if key not in ("gateway", "kind", "time", "device", "patient")}
    return GatewayEvent(gateway, kind, _time(document, "event"), device, patient, detail)
