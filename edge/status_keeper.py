"""Keeps the status file of a running agent up to date, for ``vitalbridge edge status``.

Every ``interval_s`` (2 s) the keeper takes what the agent already knows - the publisher's
connection and counters, the spool's depth and oldest batch, each device's last happening, last
payload and battery - adds the recent warnings and errors from the gateway's log, and writes it
all atomically as JSON (see :mod:`edge.status`). When the agent stops it writes a last status
with ``running: false``. The spool is read and the file written in a worker thread, so the event
loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edge.agent import EdgeAgent
from edge.status import STATUS_FORMAT, write_status_file

__all__ = ["ProblemLog", "StatusKeeper"]

log = logging.getLogger(__name__)

_WATCHED_LOGGERS = ("edge", "vitalbridge", "device_profiles")


class ProblemLog(logging.Handler):
    """Remembers the last ``capacity`` warnings and errors logged, as ``{"time", "message"}``."""

    def __init__(self, capacity: int = 20) -> None:
        super().__init__(logging.WARNING)
        self.items: deque[dict[str, Any]] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one record (its message only: one line)."""
        with contextlib.suppress(Exception):
            self.items.append({"time": record.created, "message": record.getMessage().splitlines()[0]})

    @contextlib.contextmanager
    def watching(self, names: tuple[str, ...] = _WATCHED_LOGGERS) -> Iterator[ProblemLog]:
        """Collect from the loggers ``names`` within the block."""
        loggers = [logging.getLogger(name) for name in names]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


class StatusKeeper:
    """Writes ``agent``'s status to ``path`` every ``interval_s`` until stopped (see the module docstring).

    ``stopping`` is the agent's stop event: once set, the status says the gateway is stopping.
    """

    def __init__(self, agent: EdgeAgent, path: Path, *, interval_s: float = 2.0,
                 clock_ns: Callable[[], int] | None = None, stopping: asyncio.Event | None = None) -> None:
        self.agent = agent
        self.stopping = stopping  # set when the agent was asked to stop (it then drains the spool)
        self.path = path
        self.interval_s = interval_s
        self.clock_ns = clock_ns or agent.clock_ns
        self.problems = ProblemLog()
        self.started_s = self.clock_ns() / 1e9
        self._connected: bool | None = None
        self._connected_since: float | None = None
        self._write_failed = False

    def snapshot(self, *, running: bool = True) -> dict[str, Any]:
        """The status as of now (without the spool, which :meth:`write` adds from a worker thread)."""
        now_s = self.clock_ns() / 1e9
        publisher = self.agent.publisher
        thresholds = self.agent.thresholds
        connected = publisher.connected.is_set()
        if connected != self._connected:
            if self._connected is not None or connected:
                self._connected_since = now_s
            stopping = not running or (self.stopping is not None and self.stopping.is_set())
            if not connected and self._connected and not stopping:  # (the publisher logs each connection)
                log.warning("lost the connection to the cloud at %s; readings wait in the spool",
                            publisher.endpoint.url)
            self._connected = connected
        return {
            "format": STATUS_FORMAT,
            "gateway": self.agent.config.gateway,
            "pid": os.getpid(),
            "running": running,
            "stopping": running and self.stopping is not None and self.stopping.is_set(),
            "started": self.started_s,
            "updated": now_s,
            "interval_s": self.interval_s,
            "broker": publisher.endpoint.url,
            "connected": connected,
            "connected_since": self._connected_since,
            "sent": {"batches": publisher.published, "values": publisher.published_samples,
                     "confirmed_batches": publisher.confirmed, "confirmed_values": publisher.confirmed_samples},
            "devices": [self._device(device_id) for device_id in self.agent.devices],
            "problems": list(self.problems.items),
            # The patients' thresholds from the cloud in force (None: none yet), and messages refused.
            "thresholds": {"revision": None if thresholds.config is None else thresholds.config.revision,
                           "refused": thresholds.rejected},
        }

    def _device(self, device_id: str) -> dict[str, Any]:
        device = self.agent.devices[device_id]
        config = device.config
        links = [(when, kind, detail) for kind, (when, detail) in device.events.items()
                 if kind in ("attached", "lost", "unreachable")]
        link: str | None = None
        link_since: float | None = None
        reason: str | None = None
        if links:
            when, kind, detail = max(links, key=lambda item: item[0])
            link = "connected" if kind == "attached" else kind
            link_since = when / 1e9
            reason = None if kind == "attached" else str(detail.get("reason") or "") or None
        battery = device.last_status.get("battery_percent")
        if "battery" in device.events:
            when, detail = device.events["battery"]
            battery = detail.get("percent", battery)
        return {
            "id": config.id,
            "patient": config.patient,
            "profile": config.profile,
            "transport": config.transport,
            "address": config.address,
            "link": link,
            "link_since": link_since,
            "link_reason": reason,
            "last_reading": None if device.last_payload_ns is None else device.last_payload_ns / 1e9,
            "battery_percent": battery,
        }

    def _write(self, status: dict[str, Any]) -> None:
        spool = self.agent.spool
        oldest = spool.oldest_created_ns()
        status["spool"] = {"batches": len(spool), "oldest_unsent": None if oldest is None else oldest / 1e9}
        write_status_file(self.path, status)

    async def write(self, *, running: bool = True) -> None:
        """Write the status file once; a failure is logged (once) and never stops the gateway."""
        try:
            await asyncio.to_thread(self._write, self.snapshot(running=running))
        except Exception as exc:
            if not self._write_failed:
                log.error("cannot write the status file %s (`edge status` will not see this gateway): %s",
                          self.path, exc)
            self._write_failed = True
        else:
            self._write_failed = False

    async def run(self, stop: asyncio.Event) -> None:
        """Write every ``interval_s`` until ``stop`` is set, then once more with ``running: false``."""
        with self.problems.watching():
            try:
                while not stop.is_set():
                    await self.write()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.interval_s)
            finally:
                await self.write(running=False)

