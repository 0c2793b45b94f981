"""The gateway agent: devices -> decode -> pipeline -> batches -> spool -> MQTT.

Each device has its own transport task, decoder lookup, pipeline and stream collector. Every
``batch_interval_s`` the collected streams become batches in the durable spool, and the publisher
drains the spool to the broker. The clock is passed in (``clock_ns``) so tests can drive time.
The patients' thresholds the cloud keeps on ``vb/v1/{gateway}/cmd/config`` reach each device's
pipeline (:meth:`EdgeAgent.apply_thresholds`), and are saved for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from device_profiles.errors import DecodeError
from device_profiles.registry import DecodeContext, DecodeResult, DecoderRegistry
from edge.batcher import StreamCollector
from edge.config import DeviceConfig, GatewayConfig, broker_login
from edge.patient_thresholds import PatientThresholdStore, thresholds_path
from edge.priority import batch_priority
from edge.publisher import MqttPublisher, PublisherSettings
from edge.spool import BatchSpool, SpoolDiskFullError, SpoolFullError
from edge.status import describe_device_event
from edge.transports import Payload, TransportRegistry
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.codec import encode_batch
from vitals.patient_thresholds import ThresholdConfig
from vitals.samples import Batch, Sample, Stream

__all__ = ["AgentStats", "DeviceDelivery", "EdgeAgent", "ProfileLike", "StreamProcessor", "ThresholdAware",
           "as_regular"]

log = logging.getLogger(__name__)

_EARLY_FLUSH_VALUES = 100_000  # a device that produces this much between ticks is flushed at once


class ProfileLike(Protocol):
    """What the agent needs of a device profile."""

    @property
    def id(self) -> str:
        """The profile id, ``<vendor>.<model>``."""
        ...

    def decoder_for(
        self, key: str, registry: DecoderRegistry
    ) -> Callable[[bytes, DecodeContext], DecodeResult]:
        """The decoder for payloads on channel ``key``, applying the profile's scale and offset."""
        ...


class StreamProcessor(Protocol):
    """The edge signal pipeline of one device (see :mod:`edge.pipeline`)."""

    def process(self, stream: Stream) -> list[Stream]:
        """Clean, derive and compress one chunk; returns what to send."""
        ...

    def flush(self, now_ns: int, *, final: bool = False) -> list[Stream]:
        """Heartbeats and anything held back, as of ``now_ns``; ``final`` releases everything."""
        ...


@runtime_checkable
class ThresholdAware(Protocol):
    """A pipeline that takes the patient's threshold levels (see :class:`edge.pipeline.Pipeline`)."""

    def set_threshold_levels(self, levels: Mapping[str, tuple[float, ...]]) -> None:
        """Keep every crossing of ``levels`` (by metric) exactly, replacing earlier ones."""
        ...


@dataclass
class AgentStats:
    """Counters since start."""

    payloads: int = 0
    samples_decoded: int = 0
    decode_errors: int = 0
    notes: int = 0
    batches_spooled: int = 0
    samples_spooled: int = 0
    spool_full_drops: int = 0
    spool_evicted_batches: int = 0
    spool_evicted_samples: int = 0
    errors_by_device: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _Device:
    config: DeviceConfig
    profile: ProfileLike
    pipeline: StreamProcessor | None
    collector: StreamCollector = field(default_factory=StreamCollector)
    decoders: dict[str, Callable[[bytes, DecodeContext], DecodeResult]] = field(default_factory=dict)
    last_status: dict[str, Any] = field(default_factory=dict)
    last_payload_ns: int | None = None  # gateway clock when the device last sent something
    events: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # latest of each kind, with time
    # Durability of deliveries, counted in payloads: everything up to ``durable`` is in the spool
    # (or left out on purpose); ``last_drop`` is the count when the spool last refused a batch.
    delivered: int = 0
    durable: int = 0
    last_drop: int = 0
    checked: int = 0
    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)


class DeviceDelivery:
    """The ``deliver`` the agent hands one device's transport: a :class:`~edge.transports.SpoolingDeliver`."""

    def __init__(self, agent: EdgeAgent, device_id: str) -> None:
        self.agent = agent
        self.device_id = device_id

    def __call__(self, payload: Payload) -> None:
        """Decode and process one payload (:meth:`EdgeAgent.deliver`)."""
        self.agent.deliver(self.device_id, payload)

    async def spooled(self) -> bool:
        """Wait until everything this device delivered so far is in the spool (:meth:`EdgeAgent.spooled`)."""
        return await self.agent.spooled(self.device_id)


class EdgeAgent:
    """Runs one gateway. ``await agent.run(stop_event)``; counters in :attr:`stats`."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        profiles: Mapping[str, ProfileLike],
        decoders: DecoderRegistry,
        transports: TransportRegistry,
        pipeline_factory: Callable[[DeviceConfig], StreamProcessor | None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        spool: BatchSpool | None = None,
        publisher_settings: PublisherSettings | None = None,
    ) -> None:
        self.config = config
        login = broker_login(config)  # before the spool opens: a missing password file is a config mistake
        self._zone = config.zone()
        self.clock_ns = clock_ns
        self.decoders = decoders
        self.transports = transports
        self.stats = AgentStats()
        self.spool = spool if spool is not None else BatchSpool(config.spool)  # an empty spool is falsy
        # Live batches (made within a few batch intervals) go ahead of a backlog, unless the file says otherwise.
        fields: dict[str, Any] = {"live_window_s": 3 * config.batch_interval_s, **config.publisher}
        settings = publisher_settings or PublisherSettings(**fields)
        try:
            self.publisher = MqttPublisher(config.gateway, config.mqtt_url, self.spool,
                                           clock_s=lambda: self.clock_ns() / 1e9, settings=settings,
                                           on_config=self.receive_thresholds, username=login.username,
                                           password=login.password, ca_file=login.ca_file)
        except (ssl.SSLError, OSError) as exc:
            if spool is None:
                self.spool.close()
            raise config.where(("broker", "ca_file")).error(
                ("broker", "ca_file"), f"{login.ca_file}: not a usable PEM certificate ({exc})") from None
        self.thresholds = PatientThresholdStore(thresholds_path(config.spool))
        self.devices: dict[str, _Device] = {}
        for device in config.devices:
            if device.profile not in profiles:
                raise KeyError(f"device {device.id}: unknown profile {device.profile!r}")
            transports.get(device.transport)  # fail early on an unknown transport
            pipeline = pipeline_factory(device) if pipeline_factory is not None else None
            self.devices[device.id] = _Device(device, profiles[device.profile], pipeline)
        saved = self.thresholds.load()
        if saved is not None:
            self.apply_thresholds(saved)

    # -- receiving -----------------------------------------------------------------------------------
    def _decoder(self, device: _Device, channel: str) -> Callable[[bytes, DecodeContext], DecodeResult]:
        decoder = device.decoders.get(channel)
        if decoder is None:
            decoder = device.profile.decoder_for(channel, self.decoders)
            device.decoders[channel] = decoder
        return decoder

    def deliver(self, device_id: str, payload: Payload) -> None:
        """Decode one payload from ``device_id`` and feed its samples through the pipeline."""
        device = self.devices[device_id]
        self.stats.payloads += 1
        device.delivered += 1
        device.last_payload_ns = self.clock_ns()
        context = DecodeContext(received_ns=payload.received_ns, utc_offset_s=self.config.offset_s_at(
            payload.received_ns), timezone=self._zone)
        try:
            result = self._decoder(device, payload.channel)(payload.data, context)
        except (DecodeError, KeyError) as exc:
            self.stats.decode_errors += 1
            self.stats.errors_by_device[device_id] += 1
            log.warning("device %s: cannot decode %d bytes on %s: %s", device_id, len(payload.data),
                        payload.channel, exc)
            return
        self.stats.notes += len(result.notes)
        for note in result.notes:
            log.debug("device %s: %s", device_id, note)  # counted; one per payload would drown the log
        self._report_status(device, result.status)
        self.stats.samples_decoded += len(result.samples)
        self.accept_samples(device_id, result.samples)

    def accept_samples(self, device_id: str, samples: tuple[Sample, ...] | list[Sample]) -> None:
        """Feed already decoded samples (grouped per metric) through the device's pipeline."""
        by_metric: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_metric[sample.metric].append(sample)
        for metric, group in by_metric.items():
            group.sort(key=lambda s: s.time_ns)
            stream = Stream.from_samples(metric, CATALOGUE[metric].unit, group)
            if CATALOGUE[metric].kind is MetricKind.WAVEFORM:
                stream = as_regular(stream)
            self.accept_stream(device_id, stream)

    def accept_stream(self, device_id: str, stream: Stream) -> None:
        """Feed one chunk (e.g. a waveform block) through the device's pipeline into its collector."""
        device = self.devices[device_id]
        outputs = device.pipeline.process(stream) if device.pipeline is not None else [stream]
        for output in outputs:
            device.collector.add(output)
        if device.collector.value_count >= _EARLY_FLUSH_VALUES:
            self._spool_device(device)

    def _report_status(self, device: _Device, status: Mapping[str, Any]) -> None:
        changed = {k: v for k, v in status.items() if device.last_status.get(k) != v}
        if changed:
            device.last_status.update(changed)
            self.publisher.event("device_status", device=device.config.id, patient=device.config.patient,
                                 **{k: _jsonable(v) for k, v in changed.items()})

    def _device_event(self, device_id: str, kind: str, detail: dict[str, Any]) -> None:
        device = self.devices[device_id]
        device.events[kind] = (self.clock_ns(), detail)
        log.info("%s", describe_device_event(device_id, kind, detail))
        self.publisher.event(kind, device=device_id, patient=device.config.patient,
                             **{k: _jsonable(v) for k, v in detail.items()})

    def delivery(self, device_id: str) -> DeviceDelivery:
        """The ``deliver`` for ``device_id``'s transport (it can wait for the spool, see :meth:`spooled`)."""
        if device_id not in self.devices:
            raise KeyError(f"unknown device {device_id!r}")
        return DeviceDelivery(self, device_id)

    async def spooled(self, device_id: str) -> bool:
        """Wait until every payload ``device_id`` delivered so far is in the durable spool.

        That is the case after a :meth:`tick` that spooled the device's collected streams while
        its pipeline held nothing back (a held reading could still be lost). Undecodable payloads
        and readings the pipeline compressed away count as done. Returns False when the spool
        refused some of the device's batches since the previous call (a full spool): those
        readings are gone, and whoever can fetch them again should.
        """
        device = self.devices[device_id]
        target, since = device.delivered, device.checked
        if device.durable < target:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            device.waiters.append((target, waiter))
            await waiter
        device.checked = max(device.checked, target)
        return device.last_drop <= since

    def _settle(self, device: _Device) -> None:
        """After the device was spooled: if its pipeline holds nothing, every delivery so far is durable."""
        held = getattr(device.pipeline, "held", 0) if device.pipeline is not None else 0
        if held:
            return
        device.durable = device.delivered
        waiting = device.waiters
        device.waiters = []
        for target, waiter in waiting:
            if target > device.durable:
                device.waiters.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(None)

    # -- the cloud's thresholds ----------------------------------------------------------------------
    async def receive_thresholds(self, payload: bytes) -> None:
        """A message from ``vb/v1/{gateway}/cmd/config``: apply it and save it (a bad one changes nothing)."""
        config = self.thresholds.accept(payload)
        if config is None:
            return
        self.apply_thresholds(config)
        try:
            await asyncio.to_thread(self.thresholds.save)
        except OSError as exc:  # in force now; only a restart before the next message would lack it
            log.error("cannot save the patient thresholds to %s: %s", self.thresholds.path, exc)

    def apply_thresholds(self, config: ThresholdConfig) -> None:
        """Give every device's pipeline its patient's threshold levels (none for patients left out)."""
        applied = 0
        for device in self.devices.values():
            if isinstance(device.pipeline, ThresholdAware):
                device.pipeline.set_threshold_levels(config.levels_for(device.config.patient))
                applied += 1
        unknown = sorted(set(config.patients) - {d.config.patient for d in self.devices.values()})
        log.info("patient thresholds revision %d applied to %d device(s)%s", config.revision, applied,
                 f"; no device here for {', '.join(unknown)}" if unknown else "")

    # -- sending -------------------------------------------------------------------------------------
    def tick(self, *, final: bool = False) -> int:
        """Flush pipelines and turn every device's collected streams into spooled batches.

        ``final`` (at shutdown) makes the pipelines release everything they still hold.
        """
        spooled = 0
        now = self.clock_ns()
        for device in self.devices.values():
            if device.pipeline is not None:
                for output in device.pipeline.flush(now, final=final):
                    device.collector.add(output)
            spooled += self._spool_device(device)
            self._settle(device)
        if spooled:
            self.publisher.notify()
        return spooled

    def _spool_device(self, device: _Device) -> int:
        spooled = 0
        for streams in _by_kind(device.collector.take()):
            batch = Batch(self.config.gateway, 0, device.config.patient, device.config.id,
                          device.profile.id, tuple(streams), epoch=self.spool.epoch)
            try:
                receipt = self.spool.append(functools.partial(_encode_with_seq, batch), created_ns=self.clock_ns(),
                                            samples=batch.sample_count, priority=batch_priority(batch))
            except SpoolFullError as exc:  # a full disk, or a quota full of readings it may not drop
                reason = "disk_full" if isinstance(exc, SpoolDiskFullError) else "quota"
                self.stats.spool_full_drops += batch.sample_count
                device.last_drop = device.delivered
                log.error("device %s: %s; %d values dropped", device.config.id, exc, batch.sample_count)
                self.publisher.event("spool_full", device=device.config.id, dropped=batch.sample_count,
                                     reason=reason)
                continue
            for evicted in receipt.evicted:
                self.stats.spool_evicted_batches += 1
                self.stats.spool_evicted_samples += evicted.samples
                log.warning("spool quota reached: dropped batch %d (%s, %d values) to make room", evicted.seq,
                            evicted.priority.name.lower(), evicted.samples)
                self.publisher.event("spool_drop", seq=evicted.seq, priority=evicted.priority.name.lower(),
                                     dropped=evicted.samples, created=evicted.created_ns / 1e9)
            self.stats.batches_spooled += 1
            self.stats.samples_spooled += batch.sample_count
            spooled += 1
        return spooled

    # -- running -------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, drain_timeout_s: float = 15.0) -> AgentStats:
        """Run until ``stop`` is set, then spool what is left, drain the spool and say goodbye."""
        tasks = [asyncio.create_task(self.publisher.run(), name="publisher")]
        for device_id, device in self.devices.items():
            factory = self.transports.get(device.config.transport)
            transport = factory(device.config, device.profile, self.clock_ns)
            tasks.append(asyncio.create_task(
                transport.run(self.delivery(device_id), functools.partial(self._device_event, device_id)),
                name=f"device-{device_id}",
            ))
        failure: BaseException | None = None
        try:
            while not stop.is_set() and failure is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.batch_interval_s)
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        failure = task.exception()
                        log.error("%s failed; stopping the gateway", task.get_name(), exc_info=failure)
                self.tick()
        finally:
            for task in tasks[1:]:
                task.cancel()
            for task in tasks[1:]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.tick(final=True)
            if not await self.publisher.flush(drain_timeout_s):
                log.warning("%d batches still spooled at shutdown; they will be sent on the next start",
                            len(self.spool))
            await self.publisher.announce_offline()
            tasks[0].cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await tasks[0]
        if failure is not None:
            raise failure
        return self.stats


_REGULAR_TOLERANCE_NS = 1_000


def as_regular(stream: Stream) -> Stream:
    """Return waveform samples decoded one by one as a regular stream, when they are evenly spaced.

    Decoders stamp each waveform sample (e.g. 25 pleth samples 1/75 s apart in a Nonin packet); the
    waveform filters need the sample rate, which the spacing gives. Spacing that varies by more than
    a microsecond leaves the stream irregular (the pipeline then counts it as not regular).
    """
    if len(stream) < 2 or stream.rate_hz is not None:
        return stream
    steps = np.diff(stream.times_ns)
    step = float(stream.times_ns[-1] - stream.times_ns[0]) / (len(stream) - 1)  # exact for rounded stamps
    if step <= 0 or np.max(np.abs(steps - step)) > _REGULAR_TOLERANCE_NS:
        return stream
    return Stream.regular(stream.metric, stream.unit, int(stream.times_ns[0]), 1e9 / step, stream.values,
                          stream.quality, scale=stream.scale)


def _by_kind(groups: list[list[Stream]]) -> list[list[Stream]]:
    # Waveforms travel apart from numerics, so the spool can drop them first when it is full.
    split: list[list[Stream]] = []
    for group in groups:
        waves = [s for s in group if CATALOGUE[s.metric].kind is MetricKind.WAVEFORM]
        numerics = [s for s in group if CATALOGUE[s.metric].kind is not MetricKind.WAVEFORM]
        split.extend(part for part in (numerics, waves) if part)
    return split


def _encode_with_seq(batch: Batch, seq: int) -> bytes:
    return encode_batch(dataclasses.replace(batch, seq=seq))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
