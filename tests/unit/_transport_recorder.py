"""What a transport hands the agent, recorded for the transport tests (payloads, reports, waits)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edge.transports import Payload


class Recorder:
    """Collects payloads, reports and reconnect sleeps; ``until`` waits for a condition on them."""

    def __init__(self) -> None:
        self.payloads: list[Payload] = []
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.sleeps: list[float] = []
        self._changed = asyncio.Event()

    def deliver(self, payload: Payload) -> None:
        self.payloads.append(payload)
        self._changed.set()

    def report(self, kind: str, detail: dict[str, Any]) -> None:
        self.reports.append((kind, detail))
        self._changed.set()

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self._changed.set()
        await asyncio.sleep(0)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.reports]

    def fetches(self) -> list[dict[str, Any]]:
        """Details of the stored-record fetches reported so far."""
        return [detail for kind, detail in self.reports if kind == "stored_records"]

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(20):  # a guard against a hang, not a timing assertion
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
