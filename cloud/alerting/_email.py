"""The email channel: one plain-text message per delivery, over SMTP (aiosmtplib)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from cloud.alerting._messages import DeliveryError, OutgoingMessage
from cloud.alerting._text import message_subject, message_text

__all__ = ["EmailChannel", "SmtpSettings"]


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to hand mail over. ``starttls``: upgrade a plain connection; ``tls``: TLS from the start."""

    host: str
    port: int = 25
    sender: str = "vitalbridge@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    timeout_s: float = 30.0


class EmailChannel:
    """Sends a delivery as one email. The idempotency key travels as ``Message-ID`` and a header of its own,
    so a resend after a crash is recognisable as the same message."""

    name = "email"

    def __init__(self, settings: SmtpSettings, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The email for ``message``."""
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = message.address
        email["Subject"] = message_subject(message)
        email["Date"] = format_datetime(self.clock())
        domain = self.settings.sender.rpartition("@")[2] or "vitalbridge"
        email["Message-ID"] = f"<{message.key}@{domain}>"  # the same on a resend: mail clients fold duplicates
        email["X-VitalBridge-Idempotency-Key"] = message.key
        email.set_content(message_text(message))
        return email

    async def send(self, message: OutgoingMessage) -> None:
        """Hand the email to the SMTP server; raises :class:`DeliveryError` (permanent for a 5xx refusal)."""
        settings = self.settings
        try:
            await aiosmtplib.send(
                self.build(message), hostname=settings.host, port=settings.port, username=settings.username,
                password=settings.password, start_tls=settings.starttls and not settings.tls,
                use_tls=settings.tls, timeout=settings.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {settings.host}:{settings.port}: {exc}") from None
