"""The load generator behind ``vitalbridge sim load``: many virtual gateways publishing at once.

Each virtual gateway has its own MQTT client and ``patients_per_gateway`` patients. Every patient
produces ``rate_hz`` readings a second, each reading an SpO2 and a pulse-rate value from a cheap
model; every ``batch_interval_s`` a gateway publishes one batch per patient with what came due.
The run reports the rate achieved against the target, PUBACK latency percentiles and every error
by kind. A broker problem never ends the run early: it is counted, and the gateway reconnects.
With ``track_acks`` each gateway also reads the cloud's end-to-end acknowledgements (sent once a
batch's points, rule state and alert changes are committed): the report then counts what the
cloud confirmed and times each batch from publish to that acknowledgement.

The pure parts (the reading model, batch building, rate and latency accounting, error kinds,
the report) are separate functions so they can be tested without a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from simulators.signals._keyed import keyed_normal, stream_key
from vitals.acks import AckError, decode_ack
from vitals.catalogue import CATALOGUE
from vitals.codec import encode_batch
from vitals.samples import Batch, Stream, is_identifier
from vitals.topics import ack_topic, data_topic

__all__ = [
    "LOAD_METRICS",
    "LOAD_PROFILE",
    "LoadOptions",
    "LoadReport",
    "LoadTally",
    "classify_error",
    "gateway_ids",
    "latency_percentiles",
    "load_batch",
    "load_readings",
    "patient_id",
    "readings_due",
    "run_load",
    "summarize",
]

LOAD_METRICS = ("spo2", "pulse_rate")
"""What every reading carries: one value of each."""

LOAD_PROFILE = "generic.pulse_oximeter"
_MAX_READINGS_PER_BATCH = 20_000  # a long outage's backlog leaves in several ticks, not one huge batch
_PERCENTILES = (50.0, 90.0, 99.0)
_MQTT_ERR_NO_CONN = 4  # paho-mqtt: publish on a client with no connection


@dataclass(frozen=True)
class LoadOptions:
    """A load run: ``gateways`` x ``patients_per_gateway`` patients, ``rate_hz`` readings/s each,
    for ``duration_s`` seconds, one batch per patient every ``batch_interval_s`` seconds."""

    mqtt_url: str
    gateways: int
    patients_per_gateway: int
    rate_hz: float
    duration_s: float
    batch_interval_s: float = 1.0
    qos: int = 1
    gateway_prefix: str = "load"
    seed: int = 0
    connect_timeout_s: float = 5.0
    publish_timeout_s: float = 10.0
    track_acks: bool = False
    ack_wait_s: float = 30.0

    def __post_init__(self) -> None:
        if self.gateways < 1 or self.patients_per_gateway < 1:
            raise ValueError("gateways and patients per gateway must be at least 1")
        if not (0.0 < self.rate_hz <= 1000.0):
            raise ValueError("rate must lie in (0, 1000] readings/s per patient")
        if not (self.duration_s > 0 and self.batch_interval_s > 0):
            raise ValueError("duration and batch interval must be positive")
        if self.qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        if not is_identifier(f"{self.gateway_prefix}-{self.gateways}"):
            raise ValueError(f"gateway prefix {self.gateway_prefix!r} does not make valid gateway ids")

    @property
    def target_values_per_s(self) -> float:
        """Values/s the whole run should publish (two values per reading)."""
        return self.gateways * self.patients_per_gateway * self.rate_hz * len(LOAD_METRICS)

    @property
    def target_messages_per_s(self) -> float:
        """Batches/s the whole run should publish: one per patient per batch interval, or fewer
        when readings come more rarely than batch intervals (an empty batch is not sent)."""
        per_patient = min(1.0 / self.batch_interval_s, self.rate_hz)
        return self.gateways * self.patients_per_gateway * per_patient


# -- pure parts -------------------------------------------------------------------------------------

def gateway_ids(prefix: str, count: int) -> list[str]:
    """``prefix-1`` ... ``prefix-count``."""
    return [f"{prefix}-{index}" for index in range(1, count + 1)]


def patient_id(gateway: str, index: int) -> str:
    """The id of patient ``index`` (from 1) of ``gateway``."""
    return f"{gateway}-p{index}"


def readings_due(elapsed_s: float, rate_hz: float, duration_s: float) -> int:
    """How many readings a patient has produced ``elapsed_s`` seconds into a run of ``duration_s`` s.

    Reading ``i`` is due at ``i / rate_hz`` s; the run holds the readings due in ``[0, duration_s)``.
    """
    if elapsed_s < 0:
        return 0
    total = math.ceil(duration_s * rate_hz - 1e-9)
    return min(math.floor(elapsed_s * rate_hz + 1e-9) + 1, total)


def load_readings(seed: int, patient: str, first: int, count: int, rate_hz: float,
                  ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """SpO2 (%) and pulse rate (/min) for readings ``first .. first+count-1`` of ``patient``.

    A cheap model: slow sinusoidal drifts (10 and 5 minute periods) plus keyed noise, rounded to
    the device resolution of 1. A pure function of (seed, patient, reading index).
    """
    index = np.arange(first, first + count, dtype=np.int64)
    t_s = index / rate_hz
    key = stream_key(patient)
    phase = (key % 1000) / 1000.0 * 2.0 * np.pi
    spo2 = 96.5 + 1.2 * np.sin(2.0 * np.pi * t_s / 600.0 + phase) + 0.6 * keyed_normal(seed, key, index)
    pulse = 72.0 + 8.0 * np.sin(2.0 * np.pi * t_s / 300.0 + phase) + 1.5 * keyed_normal(seed, key + 1, index)
    return np.clip(np.rint(spo2), 85.0, 100.0), np.clip(np.rint(pulse), 40.0, 180.0)


def load_batch(gateway: str, seq: int, patient: str, first: int, count: int, *, rate_hz: float,
               origin_ns: int, seed: int, epoch: str = "") -> Batch:
    """One batch of ``count`` readings of ``patient`` from reading ``first``, of spool epoch ``epoch``.

    Reading ``i`` is stamped ``origin_ns + i / rate_hz`` seconds; both metrics travel as regular
    streams with ``scale`` 1, i.e. as compact integer counts.
    """
    spo2, pulse = load_readings(seed, patient, first, count, rate_hz)
    start_ns = origin_ns + round(first * 1e9 / rate_hz)
    streams = tuple(
        Stream.regular(metric, CATALOGUE[metric].unit, start_ns, rate_hz, values, scale=1.0)
        for metric, values in zip(LOAD_METRICS, (spo2, pulse), strict=True)
    )
    return Batch(gateway, seq, patient, f"{patient}-ox", LOAD_PROFILE, streams, epoch=epoch)


def classify_error(error: BaseException) -> str:
    """A short kind for an MQTT/socket error: ``connection_refused``, ``timeout``, ``connection_lost``,
    ``not_authorized``, ``unknown_host``, ``tls`` or ``mqtt_error``."""
    text = str(error).lower()
    if "not authori" in text or "bad user" in text:
        return "not_authorized"
    if isinstance(error, ConnectionRefusedError) or "refused" in text:
        return "connection_refused"
    if isinstance(error, TimeoutError) or "timed out" in text or "timeout" in text:
        return "timeout"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "unknown_host"
    if "ssl" in text or "certificate" in text:
        return "tls"
    lost = ("disconnected", "connection lost", "not connected", "reset by peer", "broken pipe")
    if getattr(error, "rc", None) == _MQTT_ERR_NO_CONN or any(words in text for words in lost):
        return "connection_lost"
    return "mqtt_error"


def latency_percentiles(latencies_s: list[float] | npt.NDArray[np.float64]) -> dict[str, float] | None:
    """p50, p90, p99 and max of PUBACK latencies, in ms (rounded to µs); ``None`` with no data."""
    values = np.asarray(latencies_s, dtype=np.float64)
    if values.size == 0:
        return None
    points = np.percentile(values, _PERCENTILES) * 1000.0
    out = {f"p{int(q)}": round(float(p), 3) for q, p in zip(_PERCENTILES, points, strict=True)}
    out["max"] = round(float(values.max()) * 1000.0, 3)
    return out


@dataclass
class LoadTally:
    """Running counts of a load run (mutated by the gateways as they publish)."""

    published_values: int = 0
    published_messages: int = 0
    failed_values: int = 0
    unsent_values: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    confirmed_values: int = 0
    confirmed_messages: int = 0
    refused_messages: int = 0
    ack_latencies_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    """The result of a load run. Rates are per second over ``elapsed_s``; latencies in ms."""

    gateways: int
    patients: int
    rate_hz: float
    duration_s: float
    elapsed_s: float
    qos: int
    mqtt_url: str
    target_values_per_s: float
    achieved_values_per_s: float
    target_messages_per_s: float
    achieved_messages_per_s: float
    published_values: int
    published_messages: int
    failed_values: int
    unsent_values: int
    latency_ms: dict[str, float] | None
    errors: dict[str, int]
    confirmed_values: int | None = None
    confirmed_messages: int | None = None
    refused_messages: int | None = None
    ack_latency_ms: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        """True when something was published and nothing went wrong (and, with acks, the cloud stored it all)."""
        stored = self.confirmed_values is None or self.confirmed_values == self.published_values
        return (self.published_values > 0 and not self.errors and not self.failed_values and not self.unsent_values
                and stored)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        document: dict[str, Any] = {
            "gateways": self.gateways, "patients": self.patients, "rate_hz": self.rate_hz,
            "duration_s": self.duration_s, "elapsed_s": round(self.elapsed_s, 3), "qos": self.qos,
            "mqtt_url": self.mqtt_url,
            "target_values_per_s": round(self.target_values_per_s, 3),
            "achieved_values_per_s": round(self.achieved_values_per_s, 3),
            "target_messages_per_s": round(self.target_messages_per_s, 3),
            "achieved_messages_per_s": round(self.achieved_messages_per_s, 3),
            "published_values": self.published_values, "published_messages": self.published_messages,
            "failed_values": self.failed_values, "unsent_values": self.unsent_values,
            "latency_ms": self.latency_ms, "errors": dict(sorted(self.errors.items())),
        }
        if self.confirmed_messages is not None:  # the run read the cloud's acknowledgements
            document.update(confirmed_values=self.confirmed_values, confirmed_messages=self.confirmed_messages,
                            refused_messages=self.refused_messages, ack_latency_ms=self.ack_latency_ms)
        return document

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(self.to_dict())

    def table(self) -> str:
        """A human-readable summary (several lines, no trailing newline)."""
        lines = [
            f"load: {self.gateways} gateways, {self.patients} patients, {self.rate_hz:g} readings/s each "
            f"(spo2 + pulse_rate), {self.duration_s:g} s, QoS {self.qos}, broker {self.mqtt_url}",
            f"{'':<20}{'target':>12}{'achieved':>12}",
            f"{'values/s':<20}{self.target_values_per_s:>12.1f}{self.achieved_values_per_s:>12.1f}",
            f"{'messages/s':<20}{self.target_messages_per_s:>12.1f}{self.achieved_messages_per_s:>12.1f}",
            f"{'published':<20}{self.published_values} values in {self.published_messages} messages "
            f"over {self.elapsed_s:.2f} s",
        ]
        if self.failed_values or self.unsent_values:
            lines.append(f"{'not delivered':<20}{self.failed_values} values failed, "
                         f"{self.unsent_values} never sent")
        if self.latency_ms is None:
            lines.append(f"{'PUBACK latency':<20}n/a" + (" (QoS 0)" if self.qos == 0 else ""))
        else:
            lines.append(f"{'PUBACK latency ms':<20}" + "  ".join(f"{k} {v:.2f}" for k, v in self.latency_ms.items()))
        if self.confirmed_messages is not None:
            lines.append(f"{'stored by cloud':<20}{self.confirmed_values} values in {self.confirmed_messages} "
                         f"messages ({self.refused_messages} refused)")
            if self.ack_latency_ms is not None:
                lines.append(f"{'e2e ack latency ms':<20}"
                             + "  ".join(f"{k} {v:.2f}" for k, v in self.ack_latency_ms.items()))
        if self.errors:
            lines.append(f"{'errors':<20}" + ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())))
        else:
            lines.append(f"{'errors':<20}none")
        return "\n".join(lines)


def summarize(options: LoadOptions, tally: LoadTally, elapsed_s: float) -> LoadReport:
    """The report of a run that published ``tally`` in ``elapsed_s`` wall seconds."""
    span = max(elapsed_s, 1e-9)
    return LoadReport(
        gateways=options.gateways,
        patients=options.gateways * options.patients_per_gateway,
        rate_hz=options.rate_hz,
        duration_s=options.duration_s,
        elapsed_s=elapsed_s,
        qos=options.qos,
        mqtt_url=_safe_url(options.mqtt_url),
        target_values_per_s=options.target_values_per_s,
        achieved_values_per_s=tally.published_values / span,
        target_messages_per_s=options.target_messages_per_s,
        achieved_messages_per_s=tally.published_messages / span,
        published_values=tally.published_values,
        published_messages=tally.published_messages,
        failed_values=tally.failed_values,
        unsent_values=tally.unsent_values,
        latency_ms=latency_percentiles(tally.latencies_s) if options.qos else None,
        errors=dict(tally.errors),
        confirmed_values=tally.confirmed_values if options.track_acks else None,
        confirmed_messages=tally.confirmed_messages if options.track_acks else None,
        refused_messages=tally.refused_messages if options.track_acks else None,
        ack_latency_ms=latency_percentiles(tally.ack_latencies_s) if options.track_acks else None,
    )


def _safe_url(url: str) -> str:
    from vitals.endpoints import parse_mqtt_url

    try:
        return parse_mqtt_url(url).url
    except ValueError:
        return url


# -- the run --------------------------------------------------------------------------------------

class _Reconnect(Exception):
    """A publish found the connection gone: leave the client and connect again."""


class _VirtualGateway:
    """One gateway: its client, its patients' progress and its sequence numbers."""

    def __init__(self, gateway: str, options: LoadOptions, tally: LoadTally, origin_ns: int,
                 first_seq: int, epoch: str) -> None:
        self.gateway = gateway
        self.epoch = epoch
        self.options = options
        self.tally = tally
        self.origin_ns = origin_ns
        self.seq = first_seq
        self.patients = [patient_id(gateway, i) for i in range(1, options.patients_per_gateway + 1)]
        self.sent = [0] * len(self.patients)  # readings handed to the broker (or failed) per patient
        self.topic = data_topic(gateway)
        self.awaiting: dict[int, tuple[float, int]] = {}  # seq -> (publish time, values), until acknowledged

    def _client(self) -> Any:
        import aiomqtt

        from vitals.endpoints import parse_mqtt_url

        endpoint = parse_mqtt_url(self.options.mqtt_url)
        tls = None
        if endpoint.tls:
            import ssl

            tls = ssl.create_default_context()
        return aiomqtt.Client(endpoint.host, endpoint.port, username=endpoint.username,
                              password=endpoint.password, identifier=f"vb-load-{self.gateway}",
                              protocol=aiomqtt.ProtocolVersion.V5, keepalive=30,
                              timeout=self.options.connect_timeout_s, tls_context=tls)

    async def run(self, began: float, end: float) -> None:
        """Publish until ``end`` (loop time), reconnecting after any broker problem."""
        import aiomqtt

        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self._client() as client:
                    if not self.options.track_acks:
                        await self._ticks(client, began, end)
                        return
                    await client.subscribe(ack_topic(self.gateway), qos=1)
                    reader = asyncio.create_task(self._read_acks(client))
                    try:
                        await self._ticks(client, began, end)
                        deadline = loop.time() + self.options.ack_wait_s
                        while self.awaiting and loop.time() < deadline and not reader.done():
                            await asyncio.sleep(0.1)
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await reader
                    return
            except _Reconnect:
                pass
            except aiomqtt.MqttError as error:
                self.tally.errors[classify_error(error)] += 1
            except OSError as error:
                self.tally.errors[classify_error(error)] += 1
            remaining = end - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(1.0, remaining))

    async def _read_acks(self, client: Any) -> None:
        loop = asyncio.get_running_loop()
        async for message in client.messages:
            try:
                ack = decode_ack(bytes(message.payload))
            except AckError:
                self.tally.errors["bad_ack"] += 1
                continue
            if ack.epoch != self.epoch:
                continue
            now = loop.time()
            for seq in ack.stored:
                sent = self.awaiting.pop(seq, None)
                if sent is not None:
                    self.tally.ack_latencies_s.append(now - sent[0])
                    self.tally.confirmed_messages += 1
                    self.tally.confirmed_values += sent[1]
            for seq in ack.refused:
                if self.awaiting.pop(seq, None) is not None:
                    self.tally.refused_messages += 1

    async def _ticks(self, client: Any, began: float, end: float) -> None:
        loop = asyncio.get_running_loop()
        interval = self.options.batch_interval_s
        # Gateways of real homes do not tick in step: each keeps its own phase within the interval.
        phase = (stream_key(self.gateway) % 1000) / 1000.0 * interval
        while True:
            now = loop.time()
            tick = began + phase + (math.floor((now - began - phase) / interval) + 1) * interval
            await asyncio.sleep(max(0.0, min(tick, end) - now))
            final = loop.time() >= end
            await self._publish_due(client, min(loop.time(), end) - began)
            if final:
                return

    async def _publish_due(self, client: Any, elapsed_s: float) -> None:
        due = readings_due(elapsed_s, self.options.rate_hz, self.options.duration_s)
        sends = []
        for index, patient in enumerate(self.patients):
            count = min(due - self.sent[index], _MAX_READINGS_PER_BATCH)
            if count <= 0:
                continue
            batch = load_batch(self.gateway, self.seq, patient, self.sent[index], count,
                               rate_hz=self.options.rate_hz, origin_ns=self.origin_ns, seed=self.options.seed,
                               epoch=self.epoch)
            self.seq += 1
            self.sent[index] += count
            sends.append(self._publish(client, encode_batch(batch), batch.sample_count, batch.seq))
        outcomes = await asyncio.gather(*sends)
        if "connection_lost" in outcomes:
            raise _Reconnect  # already counted; the client is unusable

    async def _publish(self, client: Any, payload: bytes, values: int, seq: int) -> str | None:
        import aiomqtt

        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.options.track_acks:
            self.awaiting[seq] = (started, values)
        try:
            await client.publish(self.topic, payload, qos=self.options.qos, timeout=self.options.publish_timeout_s)
        except aiomqtt.MqttError as error:
            kind = classify_error(error)
            self.tally.errors[kind] += 1
            self.tally.failed_values += values
            self.awaiting.pop(seq, None)
            return kind
        self.tally.latencies_s.append(loop.time() - started)
        self.tally.published_values += values
        self.tally.published_messages += 1
        return None

    def unsent(self) -> int:
        """Values that came due but were never handed to the broker."""
        due = readings_due(self.options.duration_s, self.options.rate_hz, self.options.duration_s)
        return sum(max(0, due - sent) for sent in self.sent) * len(LOAD_METRICS)


async def run_load(options: LoadOptions, *, origin_ns: int | None = None, first_seq: int | None = None,
                   epoch: str | None = None) -> LoadReport:
    """Run the load and return its report; broker problems are counted, never raised.

    ``origin_ns`` (default: now) stamps the first reading; ``first_seq`` (default: now in µs, so a
    rerun with the same gateway ids keeps its sequence numbers growing) numbers the first batch;
    ``epoch`` (default: a random one per run, as a freshly created gateway spool has) goes into
    every batch, so the cloud never takes a rerun's batches for duplicates.
    """
    import secrets
    import time

    loop = asyncio.get_running_loop()
    origin = time.time_ns() if origin_ns is None else origin_ns
    seq0 = time.time_ns() // 1000 if first_seq is None else first_seq
    tally = LoadTally()
    run_epoch = secrets.token_hex(8) if epoch is None else epoch
    gateways = [_VirtualGateway(gateway, options, tally, origin, seq0, run_epoch)
                for gateway in gateway_ids(options.gateway_prefix, options.gateways)]
    began = loop.time()
    end = began + options.duration_s
    await asyncio.gather(*(gateway.run(began, end) for gateway in gateways))
    elapsed = loop.time() - began
    tally.unsent_values = sum(gateway.unsent() for gateway in gateways)
    return summarize(options, tally, elapsed)
