"""A virtual serial device on a pseudo-terminal: the edge opens it as a real serial port.

:class:`PtySerialDevice` opens a pty pair, puts the line in raw mode and writes the exact bytes
of a device (from :mod:`simulators.devices.serial_encode`) at the device's pace. The slave side is
the port the gateway opens; with ``link`` it is reached through a symbolic link that survives
re-plugging, the way udev's ``/dev/serial/by-id/...`` names do. :meth:`~PtySerialDevice.unplug`
closes both ends (the gateway's reads fail and the port disappears) and
:meth:`~PtySerialDevice.plug` brings a fresh one back. While unplugged the device keeps
measuring, and what it sends is lost, as on a real cable.

Sources of chunks: :func:`nonin_xpod_packets` (Nonin Data Format #2 packets, one every 1/3 s)
and :func:`masimo_rad8_lines` (Masimo ASCII 1 lines, one a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import math
import os
import tty
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from simulators.devices.serial_encode import encode_masimo_ascii1, encode_nonin_df2_packet

__all__ = [
    "MASIMO_LINE_PERIOD_S",
    "NONIN_PACKET_PERIOD_S",
    "PtySerialDevice",
    "masimo_rad8_lines",
    "nonin_xpod_packets",
]

NONIN_PACKET_PERIOD_S = 25 / 75
"""A Nonin Data Format #2 packet is 25 frames sent at 75 frames per second."""

MASIMO_LINE_PERIOD_S = 1.0
"""A Masimo Rad-8 prints one ASCII 1 line a second."""

_PLETH_RATE_HZ = 75.0


class PtySerialDevice:
    """Writes ``chunks`` to a pty, one every ``period_s`` seconds, while plugged.

    Use as ``async with PtySerialDevice(...) as device:`` (plugs in and starts sending), or call
    :meth:`plug`, ``await`` :meth:`run` and :meth:`close` yourself. Counters say what was written
    and what was lost (unplugged, or nobody reading and the line buffer full).
    """

    def __init__(self, chunks: Iterable[bytes], *, period_s: float, link: str | Path | None = None) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.period_s = period_s
        self.link = None if link is None else Path(link)
        self.chunks_written = 0
        self.bytes_written = 0
        self.chunks_lost = 0
        self.bytes_lost = 0
        self.finished = asyncio.Event()
        self._chunks = iter(chunks)
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> str:
        """The path the gateway opens: the link if one was given, else the pty's slave device."""
        return str(self.link) if self.link is not None else self._slave_name

    @property
    def plugged(self) -> bool:
        """Whether the device is connected (its pty exists)."""
        return self._master is not None

    def plug(self) -> None:
        """Connect: open a raw pty pair and point the link at its slave side."""
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        # A device never waits for its reader: when the line buffer is full, bytes are lost.
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_name = os.ttyname(slave)
        if self.link is not None:
            staging = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            staging.symlink_to(self._slave_name)
            staging.replace(self.link)  # atomic: the port never points at a dead pty

    def unplug(self) -> None:
        """Disconnect: close both ends (the reader gets an I/O error) and remove the link."""
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def write(self, chunk: bytes) -> int:
        """Send ``chunk`` now; returns the bytes that made it onto the line."""
        if self._master is None:
            self.chunks_lost += 1
            self.bytes_lost += len(chunk)
            return 0
        try:
            sent = os.write(self._master, chunk)
        except BlockingIOError:
            sent = 0
        self.bytes_written += sent
        if sent == len(chunk):
            self.chunks_written += 1
        else:
            self.chunks_lost += 1
            self.bytes_lost += len(chunk) - sent
        return sent

    async def run(self) -> None:
        """Send every chunk at its time (drift-free), then set :attr:`finished`."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, chunk in enumerate(self._chunks):
            delay = start + index * self.period_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.write(chunk)
        self.finished.set()

    def close(self) -> None:
        """Stop sending and unplug."""
        if self._task is not None:
            self._task.cancel()
        self.unplug()

    async def __aenter__(self) -> PtySerialDevice:
        self.plug()
        self._task = asyncio.create_task(self.run(), name="pty-serial-device")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.unplug()


def _pleth(sample_index: int, pulse_rate: float) -> int:
    """A plethysmogram sample (0..255): a quick systolic rise, then an exponential decay per beat."""
    beat_s = 60.0 / pulse_rate
    phase = (sample_index / _PLETH_RATE_HZ % beat_s) / beat_s
    shape = math.sin(math.pi / 2 * phase / 0.15) if phase < 0.15 else math.exp(-(phase - 0.15) * 3.5)
    return max(0, min(255, round(110 + 110 * shape)))


def nonin_xpod_packets(count: int | None = None, *, spo2: int | None = 97,
                       pulse_rate: int | None = 72) -> Iterator[bytes]:
    """Nonin Data Format #2 packets (125 bytes each, send every :data:`NONIN_PACKET_PERIOD_S`).

    ``count`` packets, or endless when None. ``spo2`` (%) and ``pulse_rate`` (/min) are the
    displayed values; None sends the device's "no data" codes. The plethysmogram follows
    ``pulse_rate`` (72/min when absent).
    """
    indices = itertools.count() if count is None else range(count)
    rate = float(pulse_rate or 72)
    for packet in indices:
        pleth = [_pleth(packet * 25 + i, rate) for i in range(25)]
        yield encode_nonin_df2_packet(pleth, pulse_rate=pulse_rate, spo2=spo2, spo2_fast=spo2,
                                      spo2_beat_to_beat=spo2, pulse_rate_8_beat=pulse_rate, spo2_8_beat=spo2)


def masimo_rad8_lines(start: dt.datetime, count: int | None = None, *, spo2: int | None = 97,
                      pulse_rate: int | None = 72, perfusion_index: float | None = 2.5) -> Iterator[bytes]:
    """Masimo ASCII 1 lines, one per second of device time from ``start`` (send every second)."""
    indices = itertools.count() if count is None else range(count)
    for second in indices:
        yield encode_masimo_ascii1(start + dt.timedelta(seconds=second), spo2=spo2, pulse_rate=pulse_rate,
                                   perfusion_index=perfusion_index)
