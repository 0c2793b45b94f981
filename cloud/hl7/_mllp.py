"""An MLLP client (asyncio): one connection, one message at a time, each answered by an ACK.

Framing is the library's (``<VT> message <FS><CR>``). The acknowledgement code (MSA-1) decides:
``AA``/``CA`` accepted; ``AE``/``CE`` an error worth retrying; ``AR``/``CR`` a refusal that
retrying cannot change. An ACK for another control id, a timeout or a dropped connection is a
transient error: the connection is closed (so no late ACK can be taken for the next message) and
opened again on the next send.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import hl7
from hl7.mllp import InvalidBlockError, open_hl7_connection

__all__ = ["Ack", "Hl7SendError", "MllpClient", "MllpEndpoint", "parse_ack", "parse_mllp_url"]

_ACCEPTED = frozenset({"AA", "CA"})
_RETRIED = frozenset({"AE", "CE"})
_REFUSED = frozenset({"AR", "CR"})


class Hl7SendError(Exception):
    """A message that was not acknowledged. ``permanent``: the receiver refused it (AR/CR); retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True, slots=True)
class MllpEndpoint:
    """Where an MLLP receiver listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"mllp://{self.host}:{self.port}"


def parse_mllp_url(url: str) -> MllpEndpoint:
    """``mllp://host:port`` -> :class:`MllpEndpoint`; raises ``ValueError`` with a plain reason."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not an mllp://host:port URL ({exc})") from None
    if parts.scheme != "mllp" or not parts.hostname or port is None or port == 0:
        raise ValueError(f"{url!r} is not an mllp://host:port URL")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"{url!r}: an MLLP endpoint is only a host and a port")
    return MllpEndpoint(parts.hostname, port)


@dataclass(frozen=True, slots=True)
class Ack:
    """What an acknowledgement said: MSA-1 code, MSA-2 control id, MSA-3 / ERR text."""

    code: str
    control_id: str
    text: str


def parse_ack(text: str) -> Ack:
    """Read an ACK message; raises :class:`Hl7SendError` (transient) when it is not one."""
    try:
        message = hl7.parse(text)
        msa = message.segment("MSA")
    except (KeyError, IndexError, ValueError, hl7.HL7Exception) as exc:
        raise Hl7SendError(f"the receiver answered something that is not an ACK ({exc})") from None
    code = str(msa(1)).strip().upper() if len(msa) > 1 else ""
    control_id = str(msa(2)).strip() if len(msa) > 2 else ""
    reason = str(message.unescape(str(msa(3)))) if len(msa) > 3 else ""
    with contextlib.suppress(KeyError):
        err = message.segment("ERR")
        reason = reason or str(message.unescape(str(err(8) if len(err) > 8 else err(1))))
    return Ack(code, control_id, reason)


class MllpClient:
    """Sends messages to one endpoint and checks each ACK. Not for concurrent use: one send at a time."""

    def __init__(self, endpoint: MllpEndpoint, *, connect_timeout_s: float = 5.0, ack_timeout_s: float = 30.0,
                 max_ack_bytes: int = 1 << 20) -> None:
        self.endpoint = endpoint
        self.connect_timeout_s = connect_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.max_ack_bytes = max_ack_bytes
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self.connects = 0

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._writer is not None and not self._writer.is_closing()

    async def send(self, message: str, control_id: str) -> Ack:
        """Send ``message`` (CR-separated segments) and wait for its ACK.

        Returns the ACK when it accepts (AA/CA); raises :class:`Hl7SendError` otherwise.
        """
        async with self._lock:
            return await self._send(message, control_id)

    async def _send(self, message: str, control_id: str) -> Ack:
        reader, writer = await self._connection()
        try:
            writer.writeblock(message.encode("utf-8"))  # type: ignore[attr-defined]
            await asyncio.wait_for(writer.drain(), self.ack_timeout_s)
            block = await asyncio.wait_for(reader.readblock(), self.ack_timeout_s)  # type: ignore[attr-defined]
        except TimeoutError:
            await self.aclose()
            raise Hl7SendError(f"no ACK from {self.endpoint} within {self.ack_timeout_s:g} s") from None
        except (OSError, asyncio.IncompleteReadError, InvalidBlockError, ValueError) as exc:
            await self.aclose()
            raise Hl7SendError(f"{self.endpoint}: connection lost before the ACK "
                               f"({type(exc).__name__}: {exc})") from None
        ack = parse_ack(block.decode("utf-8", "replace"))
        if ack.control_id != control_id:
            await self.aclose()  # out of step with the receiver: start again on a fresh connection
            raise Hl7SendError(f"{self.endpoint} acknowledged {ack.control_id!r}, not {control_id!r}")
        if ack.code in _ACCEPTED:
            return ack
        detail = f": {ack.text}" if ack.text else ""
        if ack.code in _REFUSED:
            raise Hl7SendError(f"{self.endpoint} refused the message ({ack.code}){detail}", permanent=True,
                               code=ack.code)
        if ack.code in _RETRIED:
            raise Hl7SendError(f"{self.endpoint} could not process the message ({ack.code}){detail}", code=ack.code)
        raise Hl7SendError(f"{self.endpoint} answered an unknown acknowledgement code {ack.code!r}{detail}",
                           code=ack.code)

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None and not self._writer.is_closing():
            return self._reader, self._writer
        await self.aclose()
        try:
            reader, writer = await asyncio.wait_for(
                open_hl7_connection(self.endpoint.host, self.endpoint.port, limit=self.max_ack_bytes),
                self.connect_timeout_s)
        except TimeoutError:
            raise Hl7SendError(f"cannot connect to {self.endpoint}: no answer within "
                               f"{self.connect_timeout_s:g} s") from None
        except OSError as exc:
            raise Hl7SendError(f"cannot connect to {self.endpoint}: {exc.strerror or exc}") from None
        self._reader, self._writer = reader, writer
        self.connects += 1
        return reader, writer

    async def aclose(self) -> None:
        """Close the connection (the next send opens a new one)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
