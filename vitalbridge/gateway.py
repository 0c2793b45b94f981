"""Builds and runs a gateway agent: profiles, decoders, transports and pipelines wired together."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from device_profiles import DeviceProfile, ProfileError, load_library
from device_profiles.registry import default_registry
from edge.agent import EdgeAgent, StreamProcessor
from edge.config import ConfigError, DeviceConfig, GatewayConfig, load_config
from edge.pipeline import Pipeline
from edge.preflight import check_devices
from edge.status_keeper import StatusKeeper
from edge.transports import TransportRegistry
from edge.transports.builtin import register_builtins
from vitalbridge._signals import stop_on_signals
from vitalbridge.virtual import VirtualOptions, VirtualTransportFactory

__all__ = ["build_agent", "build_transports", "first_problem", "gateway_profiles", "run_gateway"]

log = logging.getLogger(__name__)


def build_transports(*, virtual_start_ns: int | None = None, virtual_speed: float | None = None) -> TransportRegistry:
    """The transport registry: the built-in ``ble`` and ``serial`` plus the simulator-backed ``virtual``."""
    registry = TransportRegistry()
    register_builtins(registry)
    registry.add("virtual", VirtualTransportFactory(start_ns=virtual_start_ns, speed=virtual_speed),
                 options=VirtualOptions)
    return registry


def _pipeline_factory(config: GatewayConfig) -> Callable[[DeviceConfig], StreamProcessor | None]:
    settings: Mapping[str, Any] = config.pipeline

    def build(_device: DeviceConfig) -> StreamProcessor:
        pipeline: StreamProcessor = Pipeline(settings)
        return pipeline

    return build


def gateway_profiles(config: GatewayConfig) -> dict[str, DeviceProfile]:
    """The shipped profiles plus those in the config's ``profile_dirs``; :class:`ProfileError` if one is broken."""
    return load_library(config.profile_dirs)


def first_problem(error: ProfileError) -> str:
    """One line for a profile error: its first problem, and how many more there are."""
    more = len(error.problems) - 1
    first = str(error.problems[0]) if error.problems else str(error)
    return first + (f" (and {more} more problem{'s' if more > 1 else ''}; see `vitalbridge profiles validate`)"
                    if more > 0 else "")


def build_agent(
    config: GatewayConfig,
    *,
    transports: TransportRegistry | None = None,
    profiles: Mapping[str, DeviceProfile] | None = None,
    use_pipeline: bool = True,
) -> EdgeAgent:
    """An :class:`EdgeAgent` for ``config`` with its profiles (shipped and ``profile_dirs``) and every decoder.

    Every device is checked first (:func:`edge.preflight.check_devices`): :class:`ConfigError`
    names the device's line and field; :class:`ProfileError` reports a broken profile file.
    """
    library = dict(profiles) if profiles is not None else gateway_profiles(config)
    registry = transports or build_transports()
    decoders = default_registry()  # built in, plus installed packages' vitalbridge.decoders entry points
    check_devices(config, profiles=library, transports=registry, decoders=decoders)
    return EdgeAgent(
        config,
        profiles=library,
        decoders=decoders,
        transports=registry,
        pipeline_factory=_pipeline_factory(config) if use_pipeline else None,
    )


def _announce(config: GatewayConfig) -> None:
    """What `edge run` will do, at the default log level."""
    log.info("gateway %s: %d device(s); cloud broker %s; spool %s; status file %s; time zone %s",
             config.gateway, len(config.devices), config.mqtt_url.split("@")[-1] if "@" in config.mqtt_url
             else config.mqtt_url, config.spool, config.status_path, config.timezone or
             (f"fixed UTC offset {config.utc_offset_s:+d} s" if config.utc_offset_s is not None else "UTC"))
    if config.timezone is None and config.utc_offset_s is not None:
        log.warning("utc_offset_s is a fixed offset without daylight saving; write `timezone: Europe/Berlin` "
                    "(your zone's name) instead")
    for device in config.devices:
        log.info("will read device %s: %s over %s at %s for patient %s", device.id, device.profile,
                 device.transport, device.address or "-", device.patient)
    if not config.devices:
        log.warning("no devices configured; add one with `vitalbridge edge pair`")


def run_gateway(config_path: Path) -> int:
    """``vitalbridge edge run``: run the gateway in ``config_path`` until SIGINT/SIGTERM.

    A config mistake prints one line and returns 2, before anything starts.
    """
    for name in ("edge", "vitalbridge"):  # what a person needs to see, even without -v
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"vitalbridge edge run: {exc}", file=sys.stderr)
        return 2
    try:
        agent = build_agent(config)
    except ConfigError as exc:
        print(f"vitalbridge edge run: {exc}", file=sys.stderr)
        return 2
    except ProfileError as exc:
        print(f"vitalbridge edge run: broken device profile: {first_problem(exc)}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # the spool's folder or file cannot be made or opened
        print(f"vitalbridge edge run: {config_path}: spool: cannot open {config.spool}: {exc}", file=sys.stderr)
        return 2
    _announce(config)

    async def main() -> None:
        stop = asyncio.Event()
        keeper = StatusKeeper(agent, config.status_path, stopping=stop)
        keeper_stop = asyncio.Event()
        keeper_task = asyncio.create_task(keeper.run(keeper_stop), name="status")
        try:
            with stop_on_signals(stop):
                stats = await agent.run(stop)
            log.debug("gateway stopped: %s", stats)
        finally:
            keeper_stop.set()
            await keeper_task

    asyncio.run(main())
    print(f"gateway {config.gateway} stopped; published {agent.publisher.published_samples} values "
          f"in {agent.publisher.published} batches; {len(agent.spool)} batches left in the spool")
    return 0
