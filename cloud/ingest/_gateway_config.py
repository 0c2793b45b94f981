"""Each gateway's patients' thresholds, kept published retained on ``vb/v1/{gateway}/cmd/config``.

A reconcile loop rather than an outbox row per settings change: what a gateway must hold depends on
more than one patient's settings (the rule set this process runs, which patients are bound to the
gateway), and any of them may change in another process or through a restart with a new rules file.
So every pass computes each bound gateway's message from what is stored now, stages it in
``gateway_configs`` when it differs from the one staged (a new revision, one above the last: the
counter only grows, whichever process stages it), and publishes every staged message the broker has
not yet acknowledged. A crash between publish and mark repeats a publish with the same revision and
bytes, which the gateway recognises and skips. At start-up every staged message is published again
(a broker that lost its retained messages gets them back). A saved change nudges the loop in the
process that saved it; other processes notice within ``every_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable

from cloud.rules import RuleEngine, gateway_levels
from cloud.store import SettingsStore
from vitals.patient_thresholds import ThresholdConfigError, build_threshold_config
from vitals.topics import config_topic

__all__ = ["GatewayConfigPublisher", "PublishRetained"]

log = logging.getLogger(__name__)

PublishRetained = Callable[[str, bytes], Awaitable[bool]]
"""Publish retained at QoS 1; True once the broker acknowledged it."""


class GatewayConfigPublisher:
    """Keeps every bound gateway's threshold message staged and published (see the module docstring)."""

    def __init__(self, store: SettingsStore, engine: RuleEngine, publish: PublishRetained, *,
                 clock: Callable[[], dt.datetime], every_s: float = 5.0) -> None:
        self.store = store
        self.engine = engine
        self.publish = publish
        self.clock = clock
        self.every_s = every_s
        self.published = 0
        self.failed = 0
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Reconcile now (a patient's settings or a gateway's patients changed); call from the event loop."""
        self._wake.set()

    async def stage(self) -> list[str]:
        """Stage a new message for every gateway whose thresholds changed; returns those gateways."""
        gateways = await asyncio.to_thread(self.store.gateway_patients)
        patients = {patient for bound in gateways.values() for patient in bound}
        records = await asyncio.to_thread(self.store.settings_of, patients)
        settings = {patient: record.settings for patient, record in records.items()}
        staged: list[str] = []
        for gateway, bound in gateways.items():
            levels = gateway_levels(self.engine, bound, settings)
            digest = hashlib.sha256(json.dumps(levels, sort_keys=True).encode()).hexdigest()

            def build(revision: int, levels: dict[str, dict[str, list[float]]] = levels) -> bytes:
                return build_threshold_config(levels, revision=revision)

            try:
                row = await asyncio.to_thread(self.store.stage_gateway_config, gateway, digest, build, self.clock())
            except ThresholdConfigError as exc:
                log.error("gateway %s: cannot build its threshold message: %s", gateway, exc)
                continue
            if row is not None:
                staged.append(gateway)
        return staged

    async def send(self, *, everything: bool = False) -> int:
        """Publish the staged messages not yet acknowledged (``everything``: all of them); returns how many went."""
        rows = await asyncio.to_thread(
            self.store.all_gateway_configs if everything else self.store.unpublished_gateway_configs)
        sent = 0
        for row in rows:
            if await self.publish(config_topic(row.gateway), row.payload):
                await asyncio.to_thread(self.store.mark_gateway_config_published, row.gateway, row.revision,
                                        self.clock())
                sent += 1
            else:
                self.failed += 1
                log.warning("gateway %s: threshold message revision %d not acknowledged by the broker; "
                            "trying again in %.0f s", row.gateway, row.revision, self.every_s)
        self.published += sent
        return sent

    async def reconcile(self, *, everything: bool = False) -> int:
        """One pass: stage what changed, publish what is not yet acknowledged."""
        await self.stage()
        return await self.send(everything=everything)

    async def run(self) -> None:
        """Reconcile at start (republishing everything), then on every nudge and every ``every_s``."""
        await self.reconcile(everything=True)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.every_s)
            self._wake.clear()
            await self.reconcile()
