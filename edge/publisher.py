"""Publishes spooled batches over MQTT 5 (QoS 1), with a retained birth message and a last will.

A batch leaves the spool only when the cloud names it in an end-to-end acknowledgement on
``vb/v1/{gateway}/cmd/ack`` (:mod:`vitals.acks`), stored or refused for good; the broker's PUBACK
only marks it sent. Sent batches the cloud has not confirmed within ``ack_timeout_s`` are sent
again, and so is every unconfirmed batch after a reconnect: the cloud recognises duplicates by
``(gateway, epoch, seq)`` and acknowledges them again. At most ``window`` batches are sent and
unconfirmed at once. Batches made within ``live_window_s`` go before an older backlog, so after an
outage the doctor sees the present first; the backlog then drains oldest first.

The session is persistent (clean start off, a session expiry), so acknowledgements published while
the gateway was briefly away still arrive. Reconnects back off exponentially with jitter. With an
``on_config`` handler the publisher also subscribes to ``vb/v1/{gateway}/cmd/config`` (the cloud's
retained patient thresholds) and hands every message's bytes to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import socket
import sqlite3
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.spool import BatchSpool, Confirmation, SpooledBatch
from edge.transports._backoff import Backoff
from vitals.acks import AckError, StoredAck, decode_ack
from vitals.endpoints import parse_mqtt_url
from vitals.topics import ack_topic, config_topic, data_topic, events_topic, status_topic

__all__ = ["MqttPublisher", "PublisherSettings"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def _installed_version() -> str:
    try:
        return metadata.version("vitalbridge")
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown"


_VERSION = _installed_version()


@dataclass(frozen=True)
class PublisherSettings:
    """How the publisher paces batches; times in seconds.

    ``ack_timeout_s``: a sent batch the cloud has not confirmed after this long is sent again.
    ``window``: batches sent and not yet confirmed, at most. ``live_window_s``: batches made this
    recently go before the backlog. ``session_expiry_s``: how long the broker keeps the gateway's
    session (its acknowledgement subscription and queued acknowledgements) while it is away.
    ``reconnect_initial_s``/``reconnect_max_s``/``reconnect_jitter``: the exponential reconnect
    backoff (:class:`edge.transports._backoff.Backoff`); the jitter takes up to that fraction off
    each delay, so gateways dropped together by a broker restart come back spread over seconds.
    ``heartbeat_s``: how often a ``heartbeat`` event tells the cloud the spool's backlog.
    """

    ack_timeout_s: float = 30.0
    window: int = 64
    live_window_s: float = 15.0
    session_expiry_s: int = 24 * 3600
    reconnect_initial_s: float = 2.0
    reconnect_max_s: float = 60.0
    reconnect_jitter: float = 0.9
    heartbeat_s: float = 60.0

    def __post_init__(self) -> None:
        if (self.ack_timeout_s <= 0 or self.live_window_s < 0 or self.window < 1 or self.session_expiry_s < 0
                or self.heartbeat_s <= 0):
            raise ValueError("publisher settings need ack_timeout_s > 0, live_window_s >= 0, window >= 1, "
                             "session_expiry_s >= 0 and heartbeat_s > 0")


class MqttPublisher:
    """Drains ``spool`` to ``vb/v1/{gateway}/data`` and drops what the cloud confirms.

    Counters: ``published``/``published_samples`` (batches and values the broker acknowledged,
    each batch counted once), ``confirmed``/``confirmed_samples`` (stored by the cloud, or known
    to it already), ``refused``/``refused_samples`` (refused by the cloud for good), ``resent``
    (sends of a batch the broker had acknowledged before), ``malformed_acks`` and ``foreign_acks``
    (acknowledgements for another spool epoch), all ignored.
    """

    def __init__(
        self,
        gateway: str,
        mqtt_url: str,
        spool: BatchSpool,
        *,
        clock_s: Callable[[], float],
        version: str = _VERSION,
        settings: PublisherSettings | None = None,
        monotonic_s: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_config: Callable[[bytes], Awaitable[None]] | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.endpoint = parse_mqtt_url(mqtt_url)
        # A login given apart (from the config's broker section) wins over one written into the URL.
        self._username = username if username is not None else self.endpoint.username
        self._password = password if username is not None else self.endpoint.password
        # Made once: a CA file that is not PEM fails here (ssl.SSLError, OSError), not at every reconnect.
        self._tls = ssl.create_default_context(cafile=ca_file) if self.endpoint.tls else None
        self.spool = spool
        self.clock_s = clock_s
        self.monotonic_s = monotonic_s
        self.version = version
        self.settings = settings or PublisherSettings()
        self.published = 0
        self.published_samples = 0
        self.confirmed = 0
        self.confirmed_samples = 0
        self.refused = 0
        self.refused_samples = 0
        self.resent = 0
        self.malformed_acks = 0
        self.foreign_acks = 0
        self.connected = asyncio.Event()
        self._backoff = Backoff(self.settings.reconnect_initial_s,
                                max(self.settings.reconnect_max_s, self.settings.reconnect_initial_s),
                                jitter=self.settings.reconnect_jitter, rng=rng or random.Random())
        self._ack_topic = ack_topic(gateway)
        self._config_topic = config_topic(gateway)
        self._on_config = on_config
        self._wakeup = asyncio.Event()
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._last_heartbeat_s = -math.inf
        self._connection_s = 0.0
        self._client: aiomqtt.Client | None = None
        self._confirming: set[asyncio.Task[Confirmation]] = set()
        self._acks: asyncio.Queue[StoredAck] = asyncio.Queue(maxsize=1000)  # received, for this epoch

    def notify(self) -> None:
        """Tell the publisher that the spool has new batches."""
        self._wakeup.set()

    def event(self, kind: str, **detail: Any) -> None:
        """Queue an event (device attached/lost, battery, spool drops...) for the events topic."""
        item = {"gateway": self.gateway, "kind": kind, "time": self.clock_s(), **detail}
        if self._events.full():
            self._events.get_nowait()  # events are advisory: keep the newest
        self._events.put_nowait(item)
        self._wakeup.set()

    def _status(self, state: str) -> bytes:
        # "connection" names the connection a status belongs to (its will is made before its birth).
        return json.dumps({"gateway": self.gateway, "state": state, "time": self.clock_s(),
                           "connection": self._connection_s, "version": self.version, "epoch": self.spool.epoch,
                           "backlog": len(self.spool)}).encode()

    async def _heartbeat(self) -> None:
        # The cloud learns the spool's backlog (and that the gateway lives) even when no data flows.
        now_s = self.clock_s()
        if now_s - self._last_heartbeat_s < self.settings.heartbeat_s:
            return
        self._last_heartbeat_s = now_s
        backlog = await self._spool_call(len, self.spool)
        oldest = await self._spool_call(self.spool.oldest_created_ns)
        self.event("heartbeat", backlog=backlog,
                   oldest_unsent_s=None if oldest is None else round(max(0.0, now_s - oldest / 1e9), 1))

    def _client_for(self) -> aiomqtt.Client:
        self._connection_s = self.clock_s()
        will = aiomqtt.Will(status_topic(self.gateway), self._status("offline"), qos=1, retain=True)
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = self.settings.session_expiry_s
        client = aiomqtt.Client(
            self.endpoint.host,
            self.endpoint.port,
            username=self._username,
            password=self._password,
            identifier=f"vb-gateway-{self.gateway}",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=30,
            clean_start=False,  # keep the session: acks published while we were away are queued for us
            properties=connect,
            tls_context=self._tls,
            # Small messages at once: with Nagle each window waited ~40 ms on a delayed ACK.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # A full window of publishes awaiting PUBACK is normal here, not worth aiomqtt's warning.
        client.pending_calls_threshold = self.settings.window + 16
        return client

    async def run(self) -> None:
        """Connect, subscribe to acknowledgements, announce, send and confirm; reconnect until cancelled."""
        while True:
            cancelled = False
            failure: BaseException | None = None
            try:
                async with self._client_for() as client:
                    self._client = client
                    try:
                        await self._serve(client)
                    except asyncio.CancelledError:
                        cancelled = True
                        raise
            except aiomqtt.MqttError as exc:
                if cancelled:  # disconnecting on the way out failed: still a cancellation
                    raise asyncio.CancelledError from exc
                failure = exc
            finally:
                self.connected.clear()
                self._client = None
            me = asyncio.current_task()
            if me is not None and me.cancelling():  # a cancellation swallowed on the way out
                raise asyncio.CancelledError
            delay = self._backoff.next_delay()
            log.warning("broker %s unreachable (%s); retrying in %.2f s", self.endpoint.url, failure, delay)
            await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        # Receive acknowledgements and send batches side by side until either fails (or we are cancelled).
        await self._on_connect(client)
        tasks = {asyncio.create_task(self._receive_acks(client), name="publisher-acks"),
                 asyncio.create_task(self._confirm_acks(), name="publisher-confirm"),
                 asyncio.create_task(self._drain_forever(client), name="publisher-send")}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancel until they end: on Python 3.11 a cancellation that meets a completing wait_for
            # (aiomqtt waits for PUBACKs with it) can be swallowed, so one cancel is not always enough.
            pending = set(tasks)
            while pending:
                for task in pending:
                    task.cancel()
                _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in done:
            task.result()  # the failure that ended the connection
        raise aiomqtt.MqttError("the broker ended the message stream")

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        granted = await client.subscribe(self._ack_topic, qos=1)
        if any(getattr(code, "is_failure", False) for code in granted):
            log.error("the broker refused the subscription to %s (%s): the cloud's acknowledgements cannot "
                      "arrive, so batches stay spooled", self._ack_topic, granted)
        if self._on_config is not None:
            granted = await client.subscribe(self._config_topic, qos=1)
            if any(getattr(code, "is_failure", False) for code in granted):
                log.error("the broker refused the subscription to %s (%s): the patients' thresholds from the "
                          "cloud cannot arrive", self._config_topic, granted)
        resend = await self._spool_call(self.spool.mark_unsent)
        if resend:
            log.info("%d sent but unconfirmed batches will be sent again", resend)
        await client.publish(status_topic(self.gateway), self._status("online"), qos=1, retain=True)
        self.connected.set()
        self._backoff.reset()
        log.info("gateway %s connected to %s (spool epoch %s)", self.gateway, self.endpoint.url, self.spool.epoch)

    async def _spool_call(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        # SQLite with full sync fsyncs on commit: keep it off the event loop.
        return await asyncio.to_thread(call, *args, **kwargs)

    # -- acknowledgements ----------------------------------------------------------------------------
    async def _receive_acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if self._on_config is not None and message.topic.matches(self._config_topic):
                payload = message.payload
                await self._on_config(bytes(payload) if isinstance(payload, bytes | bytearray) else b"")
                continue
            if not message.topic.matches(self._ack_topic):
                continue
            payload = message.payload
            try:
                if not isinstance(payload, bytes | bytearray):
                    raise AckError(f"expected binary CBOR, got {type(payload).__name__}")
                ack = decode_ack(bytes(payload))
            except AckError as exc:
                self.malformed_acks += 1
                log.warning("ignoring a malformed acknowledgement on %s: %s", self._ack_topic, exc)
                continue
            if ack.epoch != self.spool.epoch:
                self.foreign_acks += 1
                log.info("ignoring an acknowledgement for spool epoch %r (ours is %s)", ack.epoch, self.spool.epoch)
                continue
            await self._acks.put(ack)

    async def _confirm_acks(self) -> None:
        # Everything that arrived meanwhile in one spool transaction (one fsync), not one per message.
        while True:
            acks = [await self._acks.get()]
            while not self._acks.empty():
                acks.append(self._acks.get_nowait())
            stored = {seq for ack in acks for seq in ack.stored}
            refused = {seq for ack in acks for seq in ack.refused}
            await self.apply_ack(StoredAck(self.spool.epoch, tuple(sorted(stored)), tuple(sorted(refused))))

    async def apply_ack(self, ack: StoredAck) -> Confirmation:
        """Drop the batches ``ack`` names from the spool, if it is for this spool's epoch; count them."""
        if ack.epoch != self.spool.epoch:
            self.foreign_acks += 1
            log.info("ignoring an acknowledgement for spool epoch %r (ours is %s)", ack.epoch, self.spool.epoch)
            return Confirmation()
        # Shielded: once the spool has dropped the batches they must be counted, even if the
        # connection (and this task with it) goes away meanwhile.
        task = asyncio.create_task(self._confirm(ack))
        self._confirming.add(task)
        task.add_done_callback(self._confirming.discard)
        return await asyncio.shield(task)

    async def _confirm(self, ack: StoredAck) -> Confirmation:
        try:
            done = await self._spool_call(self.spool.confirm, ack.epoch, ack.stored, ack.refused)
        except sqlite3.Error as exc:  # the batches stay; their resend earns another acknowledgement
            log.error("cannot drop confirmed batches from the spool: %s", exc)
            return Confirmation()
        log.debug("acknowledgement: %d stored, %d refused of %d named", done.stored, done.refused, len(ack.seqs))
        self.confirmed += done.stored
        self.confirmed_samples += done.stored_samples
        self.refused += done.refused
        self.refused_samples += done.refused_samples
        if done.refused:
            log.warning("the cloud refused %d batch(es) (%d values) for good: seq %s; see its dead letters",
                        done.refused, done.refused_samples, ", ".join(map(str, done.refused_seqs[:20])))
        self._wakeup.set()  # the window has room again
        return done

    # -- sending -------------------------------------------------------------------------------------
    async def _drain_forever(self, client: aiomqtt.Client) -> None:
        settings = self.settings
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():  # a cancellation something below swallowed
                raise asyncio.CancelledError
            self._wakeup.clear()
            await self._heartbeat()
            await self._send_events(client)
            now_ns = int(self.monotonic_s() * 1e9)
            resend_before = now_ns - int(settings.ack_timeout_s * 1e9)
            in_flight = await self._spool_call(self.spool.in_flight, sent_after_ns=resend_before)
            batches: list[SpooledBatch] = []
            if in_flight < settings.window:
                live_since = int((self.clock_s() - settings.live_window_s) * 1e9)
                batches = await self._spool_call(self.spool.due, settings.window - in_flight,
                                                 live_since_ns=live_since, resend_before_ns=resend_before)
            if batches:
                await self._send(client, batches)
                continue
            # Nothing to send now: wait for new batches, an acknowledgement, or the next overdue one.
            # (asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
            # meets a completed wait, and this task would then outlive its connection.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, min(1.0, settings.ack_timeout_s / 4))):
                    await self._wakeup.wait()

    async def _send(self, client: aiomqtt.Client, batches: list[SpooledBatch]) -> None:
        topic = data_topic(self.gateway)
        results = await asyncio.gather(*(client.publish(topic, b.payload, qos=1) for b in batches),
                                       return_exceptions=True)
        sent = [batch for batch, result in zip(batches, results, strict=True) if result is None]
        log.debug("sent seq %s (broker acknowledged %d of %d)", [b.seq for b in batches], len(sent), len(batches))
        for batch in sent:
            if batch.sends == 0:
                self.published += 1
                self.published_samples += batch.samples
            else:
                self.resent += 1
        if sent:
            try:
                await self._spool_call(self.spool.mark_sent, [b.seq for b in sent], int(self.monotonic_s() * 1e9))
            except sqlite3.Error as exc:  # unmarked batches are simply sent again
                log.error("cannot mark sent batches in the spool: %s", exc)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _send_events(self, client: aiomqtt.Client) -> None:
        while not self._events.empty():
            event = self._events.get_nowait()
            await client.publish(events_topic(self.gateway), json.dumps(event).encode(), qos=1)

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the spool is empty, every batch confirmed by the cloud (True), or ``timeout_s`` passed."""
        self.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # A confirmation drops rows before it counts them: wait for both, so the counters are final.
        while (len(self.spool) or self._confirming) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return len(self.spool) == 0 and not self._confirming

    async def announce_offline(self, timeout_s: float = 5.0) -> None:
        """A graceful goodbye: publish the retained offline status before disconnecting."""
        if self._client is not None:
            # If this fails the broker publishes the will instead.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._client.publish(status_topic(self.gateway), self._status("offline"), qos=1,
                                               retain=True)
