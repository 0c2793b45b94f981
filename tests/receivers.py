"""Real local receivers for notification tests: an SMTP server (aiosmtpd), a webhook endpoint and an HL7 MLLP
receiver, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import email
import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hl7
from aiosmtpd.controller import Controller
from hl7.mllp import start_hl7_server

from vitalbridge.stack import free_port

__all__ = ["Mailbox", "MllpReceiver", "WebhookReceiver", "mllp_receiver", "smtp_server", "verify_signature",
           "webhook_receiver"]


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 and a free port, stopped on exit."""
    mailbox = Mailbox()
    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@dataclass
class WebhookReceiver:
    """Records each POST (lower-cased headers, body); answers ``statuses`` first, then 200."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1 and a free port that receives webhook calls, stopped on exit."""
    state = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def verify_signature(secret: bytes, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the HMAC over ``timestamp + "." + body`` and compare in constant time."""
    timestamp = headers["x-vitalbridge-timestamp"]
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-vitalbridge-signature"], f"v1={expected}")


class MllpReceiver:
    """An HL7 v2 receiver over MLLP (python-hl7's asyncio server) on 127.0.0.1, in the running event loop.

    Answers each message with an ACK: the codes in ``answers`` first (``"AE"``, ``"AR"``, ... or
    ``"silent"`` for no answer at all), then ``AA``. ``received`` keeps every message as it came;
    ``accepted`` counts the ``AA`` answers by control id (MSH-10). :meth:`stop` closes the port and
    every open connection; :meth:`start` opens the same port again (a receiver restarted mid-stream).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.answers: list[str] = []
        self.received: list[hl7.Message] = []
        self.accepted: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[Any] = set()

    @property
    def url(self) -> str:
        """``mllp://127.0.0.1:<port>``."""
        return f"mllp://127.0.0.1:{self.port}"

    def accepted_messages(self) -> list[hl7.Message]:
        """The messages answered AA, each once (the first time), in arrival order."""
        seen: set[str] = set()
        kept = []
        for message in self.received:
            control_id = str(message.segment("MSH")(10))
            if control_id in self.accepted and control_id not in seen:
                seen.add(control_id)
                kept.append(message)
        return kept

    async def start(self) -> MllpReceiver:
        """Listen (again) on the port."""
        self._server = await start_hl7_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        """Close the port and drop every connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: Any, writer: Any) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    block = await reader.readblock()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                message = hl7.parse(block.decode("utf-8"))
                self.received.append(message)
                code = self.answers.pop(0) if self.answers else "AA"
                if code == "silent":
                    continue
                control_id = str(message.segment("MSH")(10))
                if code == "AA":
                    self.accepted[control_id] = self.accepted.get(control_id, 0) + 1
                ack = (f"MSH|^~\\&|RECEIVER||VitalBridge||20260101000000||ACK^R01^ACK|A{len(self.received)}|P|2.6\r"
                       f"MSA|{code}|{control_id}|{'accepted' if code == 'AA' else 'test receiver says ' + code}\r")
                writer.writeblock(ack.encode())
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()


@contextlib.asynccontextmanager
async def mllp_receiver(port: int | None = None) -> Any:
    """A started :class:`MllpReceiver`, stopped on exit."""
    receiver = await MllpReceiver(port).start()
    try:
        yield receiver
    finally:
        await receiver.stop()
