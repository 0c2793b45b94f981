"""The ``hl7`` notifier channel: an alert delivery as a PCD-04 ``ORU^R40`` over MLLP.

A recipient written ``mllp://host:port`` in the alerting policy gets this channel. The message's
control id comes from the delivery's idempotency key, so a resend after a crash is recognisable.
"""

from __future__ import annotations

from collections.abc import Callable

from cloud.alerting import DeliveryError, OutgoingMessage
from cloud.hl7._build import DEFAULT_HEADER, AlertReport, MessageHeader, alert_control_id, build_oru_r40
from cloud.hl7._mllp import Hl7SendError, MllpClient, parse_mllp_url

__all__ = ["Hl7AlertChannel", "alert_message"]


def alert_message(message: OutgoingMessage, created_ns: int, header: MessageHeader = DEFAULT_HEADER) -> str:
    """The ``ORU^R40`` text of a notifier delivery."""
    return build_oru_r40(AlertReport(alert_control_id(message.key), created_ns, message.patient, message.alerts),
                         header)


class Hl7AlertChannel:
    """Sends each delivery to its ``mllp://`` address; one connection per address. ``clock`` returns Unix ns."""

    name = "hl7"

    def __init__(self, *, clock: Callable[[], int], header: MessageHeader = DEFAULT_HEADER,
                 ack_timeout_s: float = 30.0) -> None:
        self.clock = clock
        self.header = header
        self.ack_timeout_s = ack_timeout_s
        self._clients: dict[str, MllpClient] = {}

    async def send(self, message: OutgoingMessage) -> None:
        """Send the delivery and wait for its ACK; raises :class:`DeliveryError` (permanent for AR/CR)."""
        try:
            endpoint = parse_mllp_url(message.address)
        except ValueError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        client = self._clients.get(message.address)
        if client is None:
            client = self._clients[message.address] = MllpClient(endpoint, ack_timeout_s=self.ack_timeout_s)
        try:
            await client.send(alert_message(message, self.clock(), self.header), alert_control_id(message.key))
        except Hl7SendError as exc:
            raise DeliveryError(str(exc), permanent=exc.permanent) from None

    async def aclose(self) -> None:
        """Close every connection."""
        for client in self._clients.values():
            await client.aclose()
