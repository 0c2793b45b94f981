"""A stand-in for the cloud's end-to-end acknowledgements, for gateway tests against a real broker.

It subscribes to the data topics of the gateways it is given, decodes each batch, remembers
``(gateway, epoch, seq)`` once (a resend is a duplicate) and, unless told to stay silent, publishes a
:class:`~vitals.acks.StoredAck` naming the batch on the gateway's ack topic, for duplicates too, as
the cloud does. Its session is clean: while it is away, what the gateways publish reaches no one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitals.acks import StoredAck, encode_ack
from vitals.codec import WireError, decode_batch
from vitals.topics import ack_topic, data_topic

__all__ = ["Acknowledger"]

BatchKey = tuple[str, str, int]


class Acknowledger:
    """Acknowledges every batch of ``gateways`` it receives; counters readable from any thread.

    ``silent``: receive and record, acknowledge nothing (a cloud that never commits).
    ``refuse``: sequence numbers refused for good instead of stored.
    """

    def __init__(self, host: str, port: int, gateways: Iterable[str], *, silent: bool = False,
                 refuse: Iterable[int] = ()) -> None:
        self.host = host
        self.port = port
        self.gateways = tuple(gateways)
        self.silent = silent
        self.refuse = set(refuse)
        self.arrivals: list[BatchKey] = []  # every copy, in arrival order
        self.stored: dict[BatchKey, int] = {}  # first copy of each batch -> its values
        self.duplicates = 0
        self.undecodable = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client: mqtt.Client | None = None

    def start(self) -> Acknowledger:
        """Connect (reconnecting by itself if the broker restarts) and wait for the subscription."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        client.reconnect_delay_set(0.05, 0.5)
        self._subscribed.clear()
        client.connect(self.host, self.port)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(10):
            raise RuntimeError("the acknowledger could not subscribe")
        return self

    def stop(self) -> None:
        """Disconnect: batches published from now on reach no one."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def __enter__(self) -> Acknowledger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def seqs(self, gateway: str) -> list[int]:
        """Sequence numbers of ``gateway`` stored (each once), ascending."""
        with self._lock:
            return sorted(seq for gw, _, seq in self.stored if gw == gateway)

    def first_arrivals(self, gateway: str) -> list[int]:
        """Sequence numbers of ``gateway`` in the order their first copy arrived."""
        seen: dict[int, None] = {}
        with self._lock:
            for gw, _, seq in self.arrivals:
                if gw == gateway:
                    seen.setdefault(seq, None)
        return list(seen)

    def copies(self, gateway: str, seq: int) -> int:
        """How many copies of batch ``seq`` of ``gateway`` arrived."""
        with self._lock:
            return sum(1 for gw, _, s in self.arrivals if gw == gateway and s == seq)

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe([(data_topic(gateway), 1) for gateway in self.gateways])

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            batch = decode_batch(message.payload)
        except WireError:
            with self._lock:
                self.undecodable += 1
            return
        key = (batch.gateway, batch.epoch, batch.seq)
        with self._lock:
            self.arrivals.append(key)
            if self.silent:
                return
            refused = batch.seq in self.refuse
            if key in self.stored:
                self.duplicates += 1
            elif not refused:
                self.stored[key] = batch.sample_count
        ack = StoredAck(batch.epoch, refused=(batch.seq,)) if refused else StoredAck(batch.epoch, stored=(batch.seq,))
        client.publish(ack_topic(batch.gateway), encode_ack(ack), qos=1)
