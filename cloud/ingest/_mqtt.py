"""The MQTT side of ingest: a persistent MQTT 5 session, messages acknowledged only once handled.

paho-mqtt runs its network loop in its own thread; messages cross into asyncio through a queue.
The broker's Receive Maximum bounds how many unacknowledged messages can be in flight, so the
queue cannot grow without bound. If ingest stops, the broker keeps the session and its queued
messages (session expiry), so nothing published while ingest was away is lost.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.ingest._processor import IngestProcessor
from cloud.timeseries import InfluxError
from vitals.endpoints import parse_mqtt_url
from vitals.topics import ALL_DATA, shared_data_subscription

__all__ = ["MqttIngestWorker"]

log = logging.getLogger(__name__)

_RECEIVE_MAXIMUM = 64
_SESSION_EXPIRY_S = 7 * 24 * 3600


class MqttIngestWorker:
    """Subscribe to every gateway's data topic and feed each message to an :class:`IngestProcessor`."""

    def __init__(
        self,
        processor: IngestProcessor,
        mqtt_url: str,
        *,
        client_id: str = "vitalbridge-ingest",
        shared_group: str | None = None,
    ) -> None:
        self.processor = processor
        self.endpoint = parse_mqtt_url(mqtt_url)
        self.client_id = client_id
        self.subscription = shared_data_subscription(shared_group) if shared_group else ALL_DATA
        self._queue: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._client: mqtt.Client | None = None
        self.handled = 0
        self._busy = False
        self._stopping = False

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the ingest connection: %s", reason)
            return
        client.subscribe(self.subscription, qos=1)
        log.info("ingest connected to %s, subscribed to %s", self.endpoint.url, self.subscription)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        if self._stopping:
            log.info("ingest disconnected from broker")
        else:
            log.warning("ingest lost the broker (%s); reconnecting", reason)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.clear)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

    async def start(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe; returns once the subscription is in place."""
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set_context(ssl.create_default_context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = _SESSION_EXPIRY_S
        properties.ReceiveMaximum = _RECEIVE_MAXIMUM
        client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30, clean_start=False,
                             properties=properties)
        client.loop_start()
        self._client = client
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def run(self) -> None:
        """Handle messages until cancelled; each is acknowledged only after it was handled."""
        assert self._client is not None, "call start() first"
        while True:
            message = await self._queue.get()
            self._busy = True
            try:
                await self._handle_until_done(message)
                self._client.ack(message.mid, message.qos)
                self.handled += 1
            finally:
                self._busy = False

    @property
    def idle(self) -> bool:
        """True when no received message is waiting or being handled."""
        return not self._busy and self._queue.empty()

    async def _handle_until_done(self, message: mqtt.MQTTMessage) -> None:
        delay = 0.5
        while True:
            try:
                await self.processor.handle(message.topic, bytes(message.payload))
                return
            except InfluxError as exc:
                # Keep the message (unacknowledged) and wait for InfluxDB to come back.
                log.error("InfluxDB unavailable, holding the message: %s", exc)
            except Exception:
                # A bug must not stop ingest; the message is kept as a dead letter for analysis.
                log.exception("unexpected error while ingesting a message on %s", message.topic)
                self.processor.store.add_dead_letter(
                    message.topic, "internal: unexpected error", bytes(message.payload),
                    self.processor.now(),
                )
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        """Disconnect (the broker keeps the session for the next start)."""
        if self._client is not None:
            self._stopping = True
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
