"""Publishes spooled batches over MQTT 5 (QoS 1), with a retained birth message and a last will.

A batch leaves the spool only after the broker acknowledged it (PUBACK). On a lost connection the
publisher reconnects with backoff and resends what is still spooled: the cloud drops duplicates
by ``(gateway, seq)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from importlib import metadata
from typing import Any

import aiomqtt

from edge.spool import BatchSpool
from vitals.endpoints import parse_mqtt_url
from vitals.topics import data_topic, events_topic, status_topic

__all__ = ["MqttPublisher"]

log = logging.getLogger(__name__)

_WINDOW = 16  # batches in flight at once


def _installed_version() -> str:
    try:
        return metadata.version("vitalbridge")
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown"


_VERSION = _installed_version()


class MqttPublisher:
    """Drains ``spool`` to ``vb/v1/{gateway}/data`` whenever :meth:`notify` says there is more."""

    def __init__(
        self,
        gateway: str,
        mqtt_url: str,
        spool: BatchSpool,
        *,
        clock_s: Callable[[], float],
        version: str = _VERSION,
    ) -> None:
        self.gateway = gateway
        self.endpoint = parse_mqtt_url(mqtt_url)
        self.spool = spool
        self.clock_s = clock_s
        self.version = version
        self.published = 0
        self.published_samples = 0
        self.connected = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._client: aiomqtt.Client | None = None

    def notify(self) -> None:
        """Tell the publisher that the spool has new batches."""
        self._wakeup.set()

    def event(self, kind: str, **detail: Any) -> None:
        """Queue an event (device attached/lost, battery, spool full...) for the events topic."""
        item = {"gateway": self.gateway, "kind": kind, "time": self.clock_s(), **detail}
        if self._events.full():
            self._events.get_nowait()  # events are advisory: keep the newest
        self._events.put_nowait(item)
        self._wakeup.set()

    def _status(self, state: str) -> bytes:
        return json.dumps({"gateway": self.gateway, "state": state, "time": self.clock_s(),
                           "version": self.version}).encode()

    def _client_for(self) -> aiomqtt.Client:
        will = aiomqtt.Will(status_topic(self.gateway), self._status("offline"), qos=1, retain=True)
        return aiomqtt.Client(
            self.endpoint.host,
            self.endpoint.port,
            username=self.endpoint.username,
            password=self.endpoint.password,
            identifier=f"vb-gateway-{self.gateway}",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=30,
            tls_context=ssl.create_default_context() if self.endpoint.tls else None,
        )

    async def run(self) -> None:
        """Connect, announce, drain the spool, repeat on every notify; reconnects until cancelled."""
        delay = 1.0
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    online = self._status("online")
                    await client.publish(status_topic(self.gateway), online, qos=1, retain=True)
                    self.connected.set()
                    log.info("gateway %s connected to %s", self.gateway, self.endpoint.url)
                    delay = 1.0
                    await self._drain_forever(client)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self._client = None
                log.warning("broker %s unreachable (%s); retrying in %.0f s", self.endpoint.url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _drain_forever(self, client: aiomqtt.Client) -> None:
        while True:
            self._wakeup.clear()
            await self._send_events(client)
            while batch_window := self.spool.pending(_WINDOW):
                await asyncio.gather(*(self._publish_one(client, seq, data) for seq, data in batch_window))
            await self._wakeup.wait()

    async def _publish_one(self, client: aiomqtt.Client, seq: int, payload: bytes) -> None:
        await client.publish(data_topic(self.gateway), payload, qos=1)
        self.published_samples += self.spool.acknowledge(seq)
        self.published += 1

    async def _send_events(self, client: aiomqtt.Client) -> None:
        while not self._events.empty():
            event = self._events.get_nowait()
            await client.publish(events_topic(self.gateway), json.dumps(event).encode(), qos=1)

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the spool is empty (True) or ``timeout_s`` passed (False)."""
        self.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.spool) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return len(self.spool) == 0

    async def announce_offline(self, timeout_s: float = 5.0) -> None:
        """A graceful goodbye: publish the retained offline status before disconnecting."""
        if self._client is not None:
            # If this fails the broker publishes the will instead.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    self._client.publish(status_topic(self.gateway), self._status("offline"), qos=1, retain=True),
                    timeout_s,
                )
