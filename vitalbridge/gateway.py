"""Builds and runs a gateway agent: profiles, decoders, transports and pipelines wired together."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from device_profiles import DeviceProfile, load_library
from device_profiles.registry import default_registry
from edge.agent import EdgeAgent, StreamProcessor
from edge.config import ConfigError, DeviceConfig, GatewayConfig, load_config
from edge.pipeline import Pipeline
from edge.transports import TransportRegistry
from edge.transports.builtin import register_builtins
from vitalbridge._signals import stop_on_signals
from vitalbridge.virtual import VirtualTransportFactory

__all__ = ["build_agent", "build_transports", "run_gateway"]

log = logging.getLogger(__name__)


def build_transports(*, virtual_start_ns: int | None = None, virtual_speed: float | None = None) -> TransportRegistry:
    """The transport registry: the built-in ``ble`` and ``serial`` plus the simulator-backed ``virtual``."""
    registry = TransportRegistry()
    register_builtins(registry)
    registry.add("virtual", VirtualTransportFactory(start_ns=virtual_start_ns, speed=virtual_speed))
    return registry


def _pipeline_factory(config: GatewayConfig) -> Callable[[DeviceConfig], StreamProcessor | None]:
    settings: Mapping[str, Any] = config.pipeline

    def build(_device: DeviceConfig) -> StreamProcessor:
        pipeline: StreamProcessor = Pipeline(settings)
        return pipeline

    return build


def build_agent(
    config: GatewayConfig,
    *,
    transports: TransportRegistry | None = None,
    profiles: Mapping[str, DeviceProfile] | None = None,
    use_pipeline: bool = True,
) -> EdgeAgent:
    """An :class:`EdgeAgent` for ``config`` with the shipped profiles and every registered decoder."""
    library = dict(profiles) if profiles is not None else load_library()
    for device in config.devices:
        if device.profile not in library:
            raise ConfigError(f"device {device.id}: unknown profile {device.profile!r}; "
                              f"see `vitalbridge profiles list`")
    return EdgeAgent(
        config,
        profiles=library,
        decoders=default_registry(),
        transports=transports or build_transports(),
        pipeline_factory=_pipeline_factory(config) if use_pipeline else None,
    )


def run_gateway(config_path: Path) -> int:
    """``vitalbridge edge run``: run the gateway in ``config_path`` until SIGINT/SIGTERM."""
    try:
        config = load_config(config_path)
        agent = build_agent(config)
    except (ConfigError, KeyError) as exc:
        print(f"vitalbridge edge run: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            stats = await agent.run(stop)
        log.info("gateway stopped: %s", stats)

    asyncio.run(main())
    print(f"gateway {config.gateway} stopped; published {agent.publisher.published_samples} values "
          f"in {agent.publisher.published} batches; {len(agent.spool)} batches left in the spool")
    return 0
