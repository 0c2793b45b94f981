"""The ``serial`` transport: a bedside monitor or oximeter on a serial port (USB adapter, UART, pty).

The device config's ``address`` is the port (``/dev/ttyUSB0``, a stable ``/dev/serial/by-id/...``
link, or any pyserial URL such as ``rfc2217://host:port``). Line settings come from the profile
(baud, data bits, parity, stop bits); ``options.baud`` overrides the rate for a device set up
differently. Received bytes go through a fresh framer of the profile per connection, and each
complete frame is delivered as a :class:`~edge.transports.Payload` with the frame's name as
channel. When a chunk completes several frames, earlier frames are dated back by the line time of
the frames after them, so frames never share a timestamp.

Unplugging (the port vanishes, a read fails or returns end-of-file), or silence longer than
``options.idle_timeout_s`` when set, ends the connection with a ``lost`` report; the port is then
reopened after an exponential, jittered backoff (``reconnect_initial_s`` 1, ``reconnect_max_s``
30), reset once a connection has stayed up ``stable_after_s`` (30). ``open_timeout_s`` (10) bounds
opening the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import serial_asyncio_fast

from device_profiles.profile import DeviceProfile
from device_profiles.profile import SerialTransport as SerialAttributes
from device_profiles.serial.framing import Frame
from edge.config import DeviceConfig
from edge.transports._backoff import OPTIONS_CONFIG, Backoff, PositiveInt, Seconds, failure_log_level, options_from
from edge.transports._base import DeliverFn, Payload, ReportFn
from edge.transports._explain import explain_serial_failure

__all__ = [
    "OpenSerialConnection",
    "SerialOptions",
    "SerialStats",
    "SerialTransport",
    "frame_times_ns",
    "line_settings",
    "symbol_time_ns",
]

log = logging.getLogger(__name__)

_READ_SIZE = 4096
_CLOSE_TIMEOUT_S = 5.0
_PARITY = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}


class OpenSerialConnection(Protocol):
    """``serial_asyncio_fast.open_serial_connection``: opens ``url`` with pyserial's keyword settings."""

    def __call__(self, *, url: str, baudrate: int, bytesize: int, parity: str,
                 stopbits: float) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """Open the port; raise ``OSError`` (pyserial's ``SerialException``) when it cannot."""
        ...


@dataclass(frozen=True, slots=True)
class SerialOptions:
    """Per-device options of the serial transport (seconds, except ``baud``)."""

    __pydantic_config__ = OPTIONS_CONFIG

    baud: PositiveInt | None = None
    open_timeout_s: Seconds = 10.0
    reconnect_initial_s: Seconds = 1.0
    reconnect_max_s: Seconds = 30.0
    stable_after_s: Seconds = 30.0
    idle_timeout_s: Seconds | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SerialOptions:
        """Validate a device's ``options``; ``ValueError`` names an unknown or bad one."""
        return options_from(cls, options)


@dataclass
class SerialStats:
    """Counters since the transport was made."""

    open_attempts: int = 0
    sessions: int = 0
    bytes_received: int = 0
    frames: int = 0
    discarded_bytes: int = 0


def line_settings(attributes: SerialAttributes, baud: int | None = None) -> dict[str, Any]:
    """pyserial keyword settings (``baudrate``, ``bytesize``, ``parity``, ``stopbits``) for a profile."""
    return {
        "baudrate": baud or attributes.baud,
        "bytesize": attributes.data_bits,
        "parity": _PARITY[attributes.parity],
        "stopbits": attributes.stop_bits,
    }


def symbol_time_ns(settings: Mapping[str, Any]) -> float:
    """Line time of one character in ns: start bit, data bits, parity bit if any, stop bits."""
    bits = 1 + int(settings["bytesize"]) + (0 if settings["parity"] == "N" else 1) + float(settings["stopbits"])
    return bits * 1e9 / float(settings["baudrate"])

def frame_times_ns(frames: Sequence[Frame], now_ns: int, char_ns: float) -> list[int]:
    """Arrival time (ns) of each frame completed by one chunk read at ``now_ns``.

    The last frame ended at ``now_ns``; each earlier one ended the line time of the frames after
    it before (as if they came back to back), which keeps their times distinct and ordered.
    """
    times: list[int] = []
    back_ns = 0.0
    for frame in reversed(frames):
        times.append(now_ns - round(back_ns))
        back_ns += len(frame.payload) * char_ns
    times.reverse()
    return times


class SerialTransport:
    """Transport for a device whose profile has serial attributes; ``factory(device, profile, clock_ns)``.

    ``open_connection`` opens the port (pyserial-asyncio-fast by default); ``sleep`` waits out
    reconnect delays (s), ``rng`` jitters them.
    """

    def __init__(self, device: DeviceConfig, profile: DeviceProfile, clock_ns: Callable[[], int], *,
                 open_connection: OpenSerialConnection | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        if profile.serial is None:
            raise ValueError(f"device {device.id}: profile {profile.id} has no serial attributes")
        if not device.address:
            raise ValueError(f"device {device.id}: a serial device needs its port as address")
        self.device = device
        self.profile = profile
        self.options = SerialOptions.from_options(device.options)
        self.settings = line_settings(profile.serial, self.options.baud)
        self.backoff = Backoff.for_reconnects(self.options.reconnect_initial_s, self.options.reconnect_max_s, rng)
        self.stats = SerialStats()
        self._char_ns = symbol_time_ns(self.settings)
        self._clock_ns = clock_ns
        self._open: OpenSerialConnection = open_connection or serial_asyncio_fast.open_serial_connection
        self._sleep = sleep

    async def run(self, deliver: DeliverFn, report: ReportFn) -> None:
        """Read frames until cancelled, reopening the port after every loss; never raises."""
        failures = 0
        while True:
            try:
                await self._session(deliver, report)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the port is missing, busy or misbehaving: try again later
                failures += 1
                reason = explain_serial_failure(exc, port=self.device.address, timeout_s=self.options.open_timeout_s)
                level = failure_log_level(failures)
                log.log(level, "device %s (%s): %s (attempt %d)", self.device.id, self.device.address, reason,
                        failures)
                if level >= logging.WARNING:
                    report("unreachable", {"transport": "serial", "port": self.device.address, "reason": reason,
                                           "attempts": failures})
            delay = self.backoff.next_delay()
            log.debug("device %s: reopening %s in %.1f s", self.device.id, self.device.address, delay)
            await self._sleep(delay)

    async def _session(self, deliver: DeliverFn, report: ReportFn) -> None:
        self.stats.open_attempts += 1
        async with asyncio.timeout(self.options.open_timeout_s):
            reader, writer = await self._open(url=self.device.address, **self.settings)
        framer = self.profile.make_framer()
        attached_ns = self._clock_ns()
        self.stats.sessions += 1
        report("attached", {"transport": "serial", "port": self.device.address,
                            "baud": self.settings["baudrate"]})
        reason = "port closed"
        try:
            while True:
                if self.options.idle_timeout_s is None:
                    chunk = await reader.read(_READ_SIZE)
                else:
                    async with asyncio.timeout(self.options.idle_timeout_s):
                        chunk = await reader.read(_READ_SIZE)
                if not chunk:
                    break
                self.stats.bytes_received += len(chunk)
                before = framer.discarded_bytes
                frames = framer.feed(chunk)
                self.stats.discarded_bytes += framer.discarded_bytes - before
                if frames:
                    self._deliver(frames, deliver)
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        except TimeoutError:
            reason = f"no data for {self.options.idle_timeout_s:g} s"
        except OSError as exc:  # pyserial's SerialException is an OSError: unplugged, I/O error
            reason = str(exc) or type(exc).__name__
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), _CLOSE_TIMEOUT_S)
            report("lost", {"transport": "serial", "port": self.device.address, "reason": reason})
            if self._clock_ns() - attached_ns >= self.options.stable_after_s * 1e9:
                self.backoff.reset()

    def _deliver(self, frames: list[Frame], deliver: DeliverFn) -> None:
        times = frame_times_ns(frames, self._clock_ns(), self._char_ns)
        for frame, received_ns in zip(frames, times, strict=True):
            self.stats.frames += 1
            try:
                deliver(Payload(frame.name, frame.payload, received_ns))
            except Exception:  # a consumer bug must not look like an unplugged device
                log.exception("device %s: delivering a %s frame failed", self.device.id, frame.name)
