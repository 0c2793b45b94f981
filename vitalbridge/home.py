"""``vitalbridge sim run``: a scenario driven into MQTT, through a virtual home or straight.

``home`` (the default) builds a *virtual home*: every scenario device of a kind that has a virtual
device (:data:`VIRTUAL_DEVICES`) becomes a ``virtual`` transport device of a real
:class:`~edge.agent.EdgeAgent` speaking the scenario device's own profile when the library has it
(else the generic profile of its kind), so its bytes go through the real decoders, pipeline,
spool and publisher. Device clocks and the gateway share one UTC offset (default: this machine's),
so time-stamped readings travel as local time and come back as the scenario's times. ``direct`` skips the gateway: the
scenario's readings (and waveforms on request) become batches published at QoS 1 on
``vb/v1/{gateway}/data`` (see :mod:`simulators.publish`).

Scenario time starts ``for * speed`` seconds before now (or at ``start_ns``), so the run replays
the recent past ``speed`` times faster than real time and no reading is ever stamped in the future.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from device_profiles import DeviceProfile, load_library
from edge.config import DeviceConfig, GatewayConfig
from edge.gateway import build_agent
from edge.transports import TransportRegistry
from simulators.load import classify_error
from simulators.publish import ScenarioBatcher
from simulators.scenarios import DeviceSpec, Scenario, load_scenario
from vitalbridge._signals import stop_on_signals
from vitalbridge.stack import LocalStack, StackError
from vitalbridge.virtual import (
    KIND_ALIASES,
    VIRTUAL_KINDS,
    VirtualDeviceSpec,
    VirtualTransport,
    VirtualTransportFactory,
    metric_warning,
    virtual_device_spec,
    virtual_kind,
)
from vitals.codec import encode_batch
from vitals.endpoints import parse_mqtt_url
from vitals.samples import is_identifier
from vitals.topics import data_topic

__all__ = [
    "MODES",
    "VIRTUAL_DEVICES",
    "SimRunError",
    "SimRunOptions",
    "SimRunResult",
    "home_devices",
    "local_utc_offset_s",
    "run_direct",
    "run_home",
    "run_scenario",
]

MODES = ("home", "direct")

VIRTUAL_DEVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    alias: VIRTUAL_KINDS[kind]
    for alias, kind in [*((k, k) for k in VIRTUAL_KINDS), *KIND_ALIASES.items()]
    if kind in VIRTUAL_KINDS
}
"""Scenario device kinds a virtual home can hold -> (generic profile, metrics its virtual device
carries). A scenario device whose own profile is in the library speaks that one instead (the
``pulse_oximeter`` kind also comes as the serial ``nonin.xpod`` and ``masimo.rad8``); see
:mod:`vitalbridge.virtual`."""

_PUBLISH_WINDOW = 32  # batches awaiting their PUBACK at once
_PUBLISH_TIMEOUT_S = 10.0
_CONNECT_TIMEOUT_S = 5.0


class SimRunError(Exception):
    """The run cannot start or went wrong in a way the user must hear about (message says why)."""


@dataclass(frozen=True)
class SimRunOptions:
    """What ``sim run`` does. ``duration_s`` is wall-clock seconds (default: the scenario's
    length divided by ``speed``); ``speed`` is scenario seconds per wall second. ``start_ns`` is
    the scenario's start (Unix ns; default ``duration_s * speed`` seconds before now; the run must
    end in the past). ``utc_offset_s`` is the home's local time offset, seconds east of UTC, that
    device clocks and the gateway share (default: this machine's)."""

    scenario: str
    mode: str = "home"
    speed: float = 1.0
    duration_s: float | None = None
    mqtt_url: str | None = None
    gateway: str | None = None
    seed: int = 0
    waveforms: bool = False
    tick_s: float = 1.0
    run_dir: Path | None = None
    start_ns: int | None = None
    utc_offset_s: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SimRunError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not self.speed > 0:
            raise SimRunError("--speed must be positive")
        if self.duration_s is not None and not self.duration_s > 0:
            raise SimRunError("--for must be positive")
        if self.gateway is not None and not is_identifier(self.gateway):
            raise SimRunError(f"gateway id {self.gateway!r} is not an identifier (letters, digits, _.-)")


@dataclass(frozen=True)
class SimRunResult:
    """The final line: values and batches the broker acknowledged, scenario seconds covered."""

    mode: str
    scenario: str
    gateway: str
    published_values: int
    batches: int
    scenario_s: float
    skipped_devices: tuple[str, ...] = ()
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps({
            "mode": self.mode, "scenario": self.scenario, "gateway": self.gateway,
            "published_values": self.published_values, "batches": self.batches,
            "scenario_s": round(self.scenario_s, 3), "skipped_devices": list(self.skipped_devices),
            "errors": dict(sorted(self.errors.items())),
        })


def _home_profile(spec: DeviceSpec, kind: str, library: Mapping[str, DeviceProfile]
                  ) -> tuple[VirtualDeviceSpec, str | None]:
    """The virtual device for a scenario device: its own profile when the library has one a
    virtual device speaks, else the generic profile of its kind (with a note saying so)."""
    own = library.get(spec.profile)
    if own is not None:
        try:
            return virtual_device_spec(own, kind), None
        except ValueError as error:
            reason = str(error)
    else:
        reason = f"profile {spec.profile} is not in the library"
    generic = VIRTUAL_KINDS[kind][0]
    return (virtual_device_spec(library[generic], kind),
            f"note: device {spec.id}: {reason}; the virtual {kind} speaks {generic}")


def home_devices(scenario: Scenario, *, address: str, seed: int, utc_offset_s: int = 0,
                 library: Mapping[str, DeviceProfile] | None = None,
                 ) -> tuple[tuple[DeviceConfig, ...], list[str]]:
    """The gateway devices of a virtual home for ``scenario``, and a line per compromise.

    ``address`` is how the virtual transport finds the scenario again (library name or path);
    ``utc_offset_s`` sets the device clocks (seconds east of UTC). A device kind without a
    virtual device is skipped (a ``warning:`` line ending in "skipped"); a scenario device whose
    metrics its virtual device cannot all carry gets a ``warning:`` line; another profile than
    the scenario device's gets a ``note:`` line.
    """
    profiles = library if library is not None else load_library()
    devices: list[DeviceConfig] = []
    warnings: list[str] = []
    for spec in scenario.devices:
        kind = virtual_kind(spec.kind)
        if kind not in VIRTUAL_KINDS:
            warnings.append(f"warning: device {spec.id} ({spec.kind}, {', '.join(spec.metrics)}): no virtual "
                            f"device of this kind yet; skipped (--mode direct publishes its readings)")
            continue
        virtual, note = _home_profile(spec, kind, profiles)
        if note is not None:
            warnings.append(note)
        mismatch = metric_warning(scenario, spec, virtual, spec.id)
        if mismatch is not None:
            warnings.append(mismatch)
        devices.append(DeviceConfig(
            id=spec.id, patient=scenario.patient.id, profile=virtual.profile, transport="virtual", address=address,
            # the home announces mismatches itself, so the transport need not log them again
            options={"seed": seed, "kind": kind, "utc_offset_s": utc_offset_s, "report_mismatch": False}))
    return tuple(devices), warnings


def local_utc_offset_s() -> int:
    """This machine's current offset from UTC, seconds east (what a home's device clocks show)."""
    return time.localtime().tm_gmtoff


def _start_ns(options: SimRunOptions, scenario_s: float) -> int:
    """Scenario start (Unix ns): as asked, else ``scenario_s`` before now; never running into the future."""
    now = time.time_ns()
    if options.start_ns is None:
        return now - round(scenario_s * 1e9)
    if options.start_ns + round(scenario_s * 1e9) > now:
        raise SimRunError("the run would reach into the future: start earlier, or shorten --for or --speed")
    return options.start_ns


def _default_gateway() -> str:
    return f"sim-{dt.datetime.now(dt.UTC).strftime('%Y%m%d%H%M%S')}-{os.getpid()}"


def _client(mqtt_url: str, identifier: str) -> aiomqtt.Client:
    endpoint = parse_mqtt_url(mqtt_url)
    return aiomqtt.Client(endpoint.host, endpoint.port, username=endpoint.username, password=endpoint.password,
                          identifier=identifier, protocol=aiomqtt.ProtocolVersion.V5, keepalive=30,
                          timeout=_CONNECT_TIMEOUT_S,
                          tls_context=ssl.create_default_context() if endpoint.tls else None)


async def _probe(mqtt_url: str) -> None:
    """Fail fast (with a clear message) when the broker does not answer."""
    try:
        async with _client(mqtt_url, f"vb-sim-probe-{os.getpid()}-{time.monotonic_ns()}"):
            pass
    except aiomqtt.MqttError as error:
        raise SimRunError(f"cannot reach the broker at {parse_mqtt_url(mqtt_url).url}: {error} "
                          f"({classify_error(error)})") from None


async def _until_stopped(seconds: float) -> None:
    """Sleep ``seconds``, or less if SIGINT/SIGTERM arrives."""
    stop = asyncio.Event()
    with stop_on_signals(stop), contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_home(scenario: Scenario, options: SimRunOptions, mqtt_url: str, *, gateway: str, run_dir: Path,
                   announce: Callable[[str], Any] = print) -> SimRunResult:
    """Run a virtual home for ``duration_s`` wall seconds; returns what its gateway published."""
    address = options.scenario if not Path(options.scenario).exists() else str(Path(options.scenario).resolve())
    utc_offset_s = options.utc_offset_s if options.utc_offset_s is not None else local_utc_offset_s()
    devices, warnings = home_devices(scenario, address=address, seed=options.seed, utc_offset_s=utc_offset_s)
    for line in warnings:
        announce(line)
    wired = {device.id for device in devices}
    skipped = tuple(spec.id for spec in scenario.devices if spec.id not in wired)
    if not devices:
        raise SimRunError(f"scenario {scenario.name} has no device with a virtual device "
                          f"(kinds: {', '.join(VIRTUAL_DEVICES)}); use --mode direct")
    wall_s = options.duration_s if options.duration_s is not None else scenario.duration_s / options.speed
    start_ns = _start_ns(options, wall_s * options.speed)
    config = GatewayConfig(gateway=gateway, mqtt_url=mqtt_url, spool=str(run_dir / "spool.db"),
                           batch_interval_s=options.tick_s, utc_offset_s=utc_offset_s, devices=devices)
    transports = TransportRegistry()
    created: list[VirtualTransport] = []
    factory = VirtualTransportFactory(start_ns=start_ns, speed=options.speed)

    def recording_factory(device: DeviceConfig, profile: Any, clock_ns: Callable[[], int]) -> VirtualTransport:
        transport = factory(device, profile, clock_ns)
        created.append(transport)
        return transport

    transports.add("virtual", recording_factory)
    agent = build_agent(config, transports=transports)
    announce(f"sim run {scenario.name} (home): gateway {gateway}, {len(devices)} virtual device(s), "
             f"speed {options.speed:g}, {wall_s:g} s, broker {parse_mqtt_url(mqtt_url).url}")
    stop = asyncio.Event()
    runner = asyncio.create_task(agent.run(stop))
    await _until_stopped(wall_s)
    stop.set()
    await runner
    covered = max((t.device.run.elapsed_s for t in created if t.device.run is not None), default=0.0)
    left = len(agent.spool)
    errors = {"unsent_batches": left} if left else {}
    return SimRunResult("home", scenario.name, gateway, agent.publisher.published_samples,
                        agent.publisher.published, covered, skipped, errors)


async def run_direct(scenario: Scenario, options: SimRunOptions, mqtt_url: str, *, gateway: str,
                     announce: Callable[[str], Any] = print) -> SimRunResult:
    """Publish the scenario's batches straight to the broker for ``duration_s`` wall seconds."""
    wall_s = options.duration_s if options.duration_s is not None else scenario.duration_s / options.speed
    total_s = wall_s * options.speed
    start_ns = _start_ns(options, total_s)
    run = scenario.start(start_ns, options.seed, waveforms=options.waveforms)
    # A random epoch per run, as a fresh gateway spool has; sequence numbers start at the current time
    # in µs, so a rerun with the same --gateway keeps growing even for a cloud that ignores epochs.
    batcher = ScenarioBatcher(scenario, gateway, next_seq=time.time_ns() // 1000, epoch=secrets.token_hex(8))
    topic = data_topic(gateway)
    published_values = 0
    batches = 0
    errors: Counter[str] = Counter()
    announce(f"sim run {scenario.name} (direct): gateway {gateway}, speed {options.speed:g}, {wall_s:g} s "
             f"covering {total_s:g} s of scenario, broker {parse_mqtt_url(mqtt_url).url}")

    async def publish(client: aiomqtt.Client, payload: bytes, values: int) -> None:
        nonlocal published_values, batches
        try:
            await client.publish(topic, payload, qos=1, timeout=_PUBLISH_TIMEOUT_S)
        except aiomqtt.MqttError as error:
            errors[classify_error(error)] += 1
            return
        published_values += values
        batches += 1

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with stop_on_signals(stop):
        try:
            async with _client(mqtt_url, f"vb-sim-{gateway}") as client:
                began = loop.time()
                while run.elapsed_s < total_s and not stop.is_set():
                    next_tick = began + (int((loop.time() - began) / options.tick_s) + 1) * options.tick_s
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, next_tick - loop.time()))
                    target = min((loop.time() - began) * options.speed, total_s)
                    if target <= run.elapsed_s:
                        continue
                    chunk = run.advance(target - run.elapsed_s)
                    pending = [(encode_batch(b), b.sample_count) for b in batcher.batches(chunk)]
                    for lo in range(0, len(pending), _PUBLISH_WINDOW):
                        window = pending[lo:lo + _PUBLISH_WINDOW]
                        await asyncio.gather(*(publish(client, payload, n) for payload, n in window))
                    if errors.get("connection_lost"):
                        break
        except aiomqtt.MqttError as error:
            errors[classify_error(error)] += 1
    return SimRunResult("direct", scenario.name, gateway, published_values, batches, run.elapsed_s,
                        (), dict(errors))


async def run_scenario(options: SimRunOptions, *, announce: Callable[[str], Any] = print) -> SimRunResult:
    """``sim run``: load the scenario, start a local broker if no URL is given, run the chosen mode.

    Raises :class:`SimRunError` (or :class:`simulators.scenarios.ScenarioError`) with a message
    for the user; broker problems during the run are counted in the result.
    """
    scenario = load_scenario(options.scenario)
    gateway = options.gateway or _default_gateway()
    if options.mqtt_url is not None:
        try:
            parse_mqtt_url(options.mqtt_url)
        except ValueError as error:
            raise SimRunError(str(error)) from None
    with contextlib.ExitStack() as resources:
        run_dir = options.run_dir or Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="vb-sim-")))
        run_dir.mkdir(parents=True, exist_ok=True)
        mqtt_url = options.mqtt_url
        if mqtt_url is None:
            stack = LocalStack(run_dir / "stack", mqtt=True, influx=False)
            try:
                stack.start()
            except StackError as error:
                raise SimRunError(f"cannot start a local Mosquitto: {error}") from None
            resources.callback(stack.stop)
            mqtt_url = stack.mqtt_url
            announce(f"started Mosquitto at {mqtt_url}")
        await _probe(mqtt_url)
        if options.mode == "home":
            return await run_home(scenario, options, mqtt_url, gateway=gateway, run_dir=run_dir, announce=announce)
        return await run_direct(scenario, options, mqtt_url, gateway=gateway, announce=announce)
