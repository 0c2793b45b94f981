"""The gateway's composition: an agent built from a config, with its profiles, decoders, transports and pipelines.

The transports are the built-in ``ble`` and ``serial`` and, for a config that names another one,
the transport an installed package registers under the ``vitalbridge.transports`` entry point
group (its object is ``register(registry)``), loaded only then: a gateway that reads real devices
never imports the simulators that provide ``virtual``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from device_profiles import DeviceProfile, ProfileError, load_library
from device_profiles.registry import default_registry
from edge.agent import EdgeAgent, StreamProcessor
from edge.config import DeviceConfig, GatewayConfig
from edge.pipeline import Pipeline
from edge.preflight import check_devices
from edge.transports import TransportRegistry
from edge.transports.builtin import register_builtins

__all__ = ["TRANSPORT_ENTRY_POINT_GROUP", "build_agent", "build_transports", "first_problem", "gateway_profiles"]

log = logging.getLogger(__name__)

TRANSPORT_ENTRY_POINT_GROUP = "vitalbridge.transports"
"""Entry point group of transports from installed packages: name = transport key, object = ``register(registry)``."""


def build_transports(wanted: Iterable[str] = ()) -> TransportRegistry:
    """The built-in ``ble`` and ``serial`` transports, plus each other name in ``wanted`` that an
    installed package provides (:data:`TRANSPORT_ENTRY_POINT_GROUP`).

    A provider that cannot be imported (a missing dependency) is recorded with the reason, which
    the config check then reports on the device's line.
    """
    registry = TransportRegistry()
    register_builtins(registry)
    installed = entry_points(group=TRANSPORT_ENTRY_POINT_GROUP)
    for entry in installed:
        registry.installed(entry.name)
    for name in sorted(set(wanted) - set(registry.names())):
        for entry in installed.select(name=name):
            try:
                register: Callable[[TransportRegistry], None] = entry.load()
            except ImportError as exc:
                registry.unavailable(name, f"{entry.value} cannot be imported ({exc}); install the package "
                                           "that provides it (for `virtual`: pip install 'vitalbridge[sim]')")
                break
            register(registry)
            break
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

    ``transports`` defaults to :func:`build_transports` for the transports the config names.
    Every device is checked first (:func:`edge.preflight.check_devices`): :class:`ConfigError`
    names the device's line and field; :class:`ProfileError` reports a broken profile file.
    """
    library = dict(profiles) if profiles is not None else gateway_profiles(config)
    registry = transports or build_transports(device.transport for device in config.devices)
    decoders = default_registry()  # built in, plus installed packages' vitalbridge.decoders entry points
    check_devices(config, profiles=library, transports=registry, decoders=decoders)
    return EdgeAgent(
        config,
        profiles=library,
        decoders=decoders,
        transports=registry,
        pipeline_factory=_pipeline_factory(config) if use_pipeline else None,
    )
