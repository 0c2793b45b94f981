"""The MQTT side of ingest: a persistent MQTT 5 session, a bounded in-flight window, manual acknowledgement.

paho-mqtt runs its network loop in its own thread. Each message received is counted in flight
until the worker acknowledges it; when ``max_inflight`` messages are in flight the network thread
waits, so TCP back-pressure leaves the rest with the broker (which holds them for the persistent
session). Memory is bounded whatever the broker does: Mosquitto 2.0 does not bound deliveries by
Receive Maximum, and QoS 0 messages are not bounded by it at all.

Acknowledgements name packet ids, which only mean something on the connection that received them:
after a reconnect the broker redelivers what was not acknowledged, so messages received on an
older connection are dropped from the queue and never acknowledged.

Several workers share the load through a shared subscription, each with its own client id. When
another client connects with this one's id the broker hands it the session and disconnects this
one: this client then stops, says so, and does not reconnect, so two workers configured alike
never knock each other off in turn. It learns of it from the DISCONNECT reason "session taken
over" where the broker sends one, and otherwise from a claim: on every connection a worker reads
``vb/v1/_ingest/{client id}/claim`` and publishes there, retained, its instance and when that
instance first connected. Both instances share one session, so each sees the other's claim only
when it reconnects and reads the retained one: the instance that started later keeps the id and
the earlier one stops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.ingest._processor import InboundMessage
from vitals.endpoints import parse_mqtt_url
from vitals.topics import TOPIC_ROOT

__all__ = ["BrokerUnavailable", "MqttIngestClient"]

log = logging.getLogger(__name__)

_NOBODY_WAITING = 1 << 62
_SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason code


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached or refused the connection; the message says which and why."""


class MqttIngestClient:
    """Receives messages on ``subscriptions`` into a bounded queue; acknowledges and publishes on request."""

    def __init__(
        self,
        mqtt_url: str,
        subscriptions: Sequence[str],
        *,
        client_id: str,
        max_inflight: int = 5000,
        session_expiry_s: int = 3600,
        ca_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.endpoint = parse_mqtt_url(mqtt_url)
        self.ca_file = ca_file
        # Credentials given apart from the URL win over those in it (the URL is often logged or shown).
        self._username = username if username is not None else self.endpoint.username
        self._password = password if username is not None else self.endpoint.password
        self.subscriptions = list(subscriptions)
        self.client_id = client_id
        self.max_inflight = max_inflight
        self.session_expiry_s = session_expiry_s
        self.taken_over = False
        self.instance = uuid.uuid4().hex
        self.claim_topic = f"{TOPIC_ROOT}/_ingest/{client_id}/claim"
        self._first_connected_ns = 0
        self._queue: collections.deque[tuple[int, InboundMessage]] = collections.deque()
        self._inflight = 0
        self._window = threading.Condition()
        self._generation = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None
        self._wanted = _NOBODY_WAITING
        self._connected: asyncio.Event | None = None
        self._client: mqtt.Client | None = None
        self.last_error = ""

    # -- paho's network thread ------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"the broker refused the connection: {reason}"
            log.error("broker %s refused the ingest connection: %s", self.endpoint.url, reason)
            return
        with self._window:
            # Whatever an older connection delivered and we have not acknowledged comes again.
            self._generation += 1
            self._inflight = 0  # counts this connection's messages only
            self._queue.clear()
            self._window.notify_all()
        if not self._first_connected_ns:
            self._first_connected_ns = time.time_ns()
        # Read the claims first: the retained one is the last instance's that held this id.
        client.subscribe([(topic, 1) for topic in [self.claim_topic, *self.subscriptions]])
        client.publish(self.claim_topic, f"{self.instance} {self._first_connected_ns}".encode(), qos=1, retain=True)
        self.last_error = ""
        log.info("ingest connected to %s as %s, subscribed to %s", self.endpoint.url, self.client_id,
                 ", ".join(self.subscriptions))
        self._signal(connected=True)

    def _on_disconnect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self._stopping:
            log.info("ingest disconnected from the broker")
        elif getattr(reason, "value", None) == _SESSION_TAKEN_OVER:
            self._give_up(client)
        else:
            self.last_error = f"lost the broker: {reason}"
            log.warning("ingest lost the broker %s (%s); reconnecting", self.endpoint.url, reason)
        self._signal(connected=False)

    def _give_up(self, client: mqtt.Client) -> None:
        self.taken_over = True
        self.last_error = (f"another client connected with this ingest's client id {self.client_id!r} and took "
                           f"over its session; give each ingest worker its own client id")
        log.error("%s; this worker stops receiving", self.last_error)
        self._stopping = True
        client.disconnect()  # no reconnect: two workers with one id would take the session in turn
        self._signal(connected=False)

    def _on_claim(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        if message.qos > 0:
            client.ack(message.mid, message.qos)
        instance, _, made = bytes(message.payload).decode("ascii", "replace").partition(" ")
        if (instance != self.instance and made.isdigit() and int(made) > self._first_connected_ns
                and not self._stopping):
            self._give_up(client)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.claim_topic:
            self._on_claim(client, message)
            return
        # MQTT 5 senders may say what the payload is (SenML as JSON or CBOR); absent, it is told from the bytes.
        content_type = str(getattr(message.properties, "ContentType", "") or "")
        with self._window:
            while self._inflight >= self.max_inflight and not self._stopping:
                self._window.wait(0.5)
            if self._stopping:
                return
            self._inflight += 1
            self._queue.append((self._generation, InboundMessage(message.topic, bytes(message.payload),
                                                                 message.mid, message.qos, content_type)))
            # Wake the event loop only when the taker's wish is met (not once per message).
            wake = len(self._queue) >= self._wanted
            if wake:
                self._wanted = _NOBODY_WAITING
        if wake:
            self._wake()

    def _wake(self) -> None:
        loop, arrived = self._loop, self._arrived
        if loop is not None and arrived is not None:
            loop.call_soon_threadsafe(arrived.set)

    def _signal(self, *, connected: bool) -> None:
        loop, event = self._loop, self._connected
        if loop is None or event is None:
            return
        loop.call_soon_threadsafe(event.set if connected else event.clear)

    # -- the event loop's side ------------------------------------------------------------------
    async def start(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe; raises :class:`BrokerUnavailable` if that does not happen in time."""
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._connected = asyncio.Event()
        self._stopping = False
        self.taken_over = False
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        if self._username:
            client.username_pw_set(self._username, self._password)
        if self.endpoint.tls:
            # A private CA (``vitalbridge cloud init-pki``) when given, else the system's trusted CAs.
            client.tls_set_context(ssl.create_default_context(cafile=self.ca_file))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = min(self.max_inflight, 65535)
        client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30, clean_start=False,
                             properties=properties)
        client.loop_start()
        self._client = client
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            reason = self.last_error or "no answer"
            await self.stop()
            raise BrokerUnavailable(f"cannot reach the MQTT broker at {self.endpoint.url}: {reason} "
                                    f"within {timeout_s:g} s") from None

    @property
    def connected(self) -> bool:
        """True while the session is up."""
        return self._connected is not None and self._connected.is_set()

    @property
    def depth(self) -> int:
        """Messages received and not yet acknowledged (queued or being handled)."""
        return self._inflight

    @property
    def queued(self) -> int:
        """Messages received and not yet taken."""
        return len(self._queue)

    async def take(self, max_messages: int, max_wait_s: float) -> list[tuple[int, InboundMessage]]:
        """Wait for a first message, then up to ``max_wait_s`` more for the micro-batch to fill."""
        assert self._arrived is not None, "call start() first"
        for wanted, timeout in ((1, None), (max_messages, max_wait_s)):
            with self._window:
                if len(self._queue) >= wanted:
                    continue
                self._arrived.clear()
                self._wanted = wanted
            if timeout is None:
                await self._arrived.wait()
            elif timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), timeout)
            with self._window:
                self._wanted = _NOBODY_WAITING
        taken: list[tuple[int, InboundMessage]] = []
        with self._window:
            while self._queue and len(taken) < max_messages:
                taken.append(self._queue.popleft())
        return taken

    def is_current(self, generation: int) -> bool:
        """True when a message of ``generation`` came on the present connection (so may be acknowledged)."""
        return generation == self._generation

    def ack(self, messages: Sequence[tuple[int, InboundMessage]]) -> None:
        """Acknowledge messages taken from this connection; frees their places in the window."""
        client = self._client
        with self._window:
            current = self._generation
            for generation, message in messages:
                if generation != current:
                    continue  # received on an older connection: its window place went with it
                if client is not None and message.qos > 0:
                    client.ack(message.mid, message.qos)
                self._inflight -= 1
            self._window.notify_all()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Queue a publish (paho sends it from its thread, and again after a reconnect for QoS 1)."""
        if self._client is not None:
            self._client.publish(topic, payload, qos=qos)

    async def publish_retained(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> bool:
        """Publish ``payload`` retained at QoS 1; True once the broker has acknowledged it (PUBACK).

        False when not connected or not acknowledged within ``timeout_s``: the caller tries again later.
        """
        client = self._client
        if client is None or not client.is_connected():
            return False
        info = client.publish(topic, payload, qos=1, retain=True)
        try:
            await asyncio.to_thread(info.wait_for_publish, timeout_s)
        except (RuntimeError, ValueError):  # the connection went (or the message was never queued)
            return False
        return info.is_published()

    async def stop(self) -> None:
        """Disconnect (the broker keeps the session for the next start)."""
        self._stopping = True
        self._wake()
        with self._window:
            self._window.notify_all()
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
