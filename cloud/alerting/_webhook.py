"""The webhook channel: a signed JSON POST per delivery.

Headers: ``Idempotency-Key`` (the same on a resend), ``X-VitalBridge-Timestamp`` (Unix seconds) and
``X-VitalBridge-Signature: v1=<hex>``, the HMAC-SHA256 under the shared secret of
``"<timestamp>." + body``. A receiver recomputes it over the raw body, compares in constant time
and refuses old timestamps (see ``docs/alerts.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx

from cloud.alerting._messages import DeliveryError, OutgoingMessage

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookChannel", "sign", "webhook_body"]

SIGNATURE_HEADER = "X-VitalBridge-Signature"
TIMESTAMP_HEADER = "X-VitalBridge-Timestamp"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def webhook_body(message: OutgoingMessage) -> dict[str, Any]:
    """The JSON document a webhook receives."""
    return {
        "idempotency_key": message.key,
        "patient": message.patient,
        "attempt": message.attempt,
        "alerts": [
            {"id": a.id, "rule": a.rule, "metric": a.metric, "severity": a.severity, "state": a.state,
             "message": a.message, "purpose": a.purpose, "fired_at": a.fired_at.isoformat(),
             "episodes": a.episodes, "late": a.late}
            for a in message.alerts
        ],
    }


class WebhookChannel:
    """POSTs each delivery to its URL. 2xx is delivered; 408, 429 and 5xx are retried; other 4xx are final."""

    name = "webhook"

    def __init__(self, secret: bytes, *, clock: Callable[[], float], timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not secret:
            raise ValueError("a webhook secret is needed to sign requests")
        self.secret = secret
        self.clock = clock
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False)

    async def send(self, message: OutgoingMessage) -> None:
        """POST the signed body; raises :class:`DeliveryError`."""
        body = json.dumps(webhook_body(message), separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(self.clock())
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.key,
                   TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(self.secret, timestamp, body),
                   "User-Agent": "VitalBridge-webhook/1"}
        try:
            response = await self._client.post(message.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {message.address}: {type(exc).__name__}: {exc}") from None
        if response.is_success:
            return
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise DeliveryError(f"POST {message.address}: HTTP {response.status_code} {response.text[:200]}",
                            permanent=permanent)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
