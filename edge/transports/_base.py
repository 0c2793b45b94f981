"""The transport interface and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["DeliverFn", "Payload", "ReportFn", "SpoolingDeliver", "Transport", "TransportFactory",
           "TransportRegistry", "wait_spooled"]


@dataclass(frozen=True, slots=True)
class Payload:
    """Bytes from a device: ``channel`` is the characteristic UUID (BLE) or frame kind (serial)."""

    channel: str
    data: bytes
    received_ns: int


DeliverFn = Callable[[Payload], None]
ReportFn = Callable[[str, dict[str, Any]], None]


@runtime_checkable
class SpoolingDeliver(Protocol):
    """A ``deliver`` that can tell when what it was given is safe in the gateway's durable spool.

    The agent hands each transport one of these. A transport that must not forget something
    before it is stored (a glucose meter's record cursor: a record the meter was told not to send
    again must already be in the spool) awaits :meth:`spooled` first.
    """

    def __call__(self, payload: Payload) -> None:
        """Take one payload."""
        ...

    async def spooled(self) -> bool:
        """Wait until every payload delivered so far is in the spool (or deliberately left out:
        undecodable, or compressed away); False when some of them were dropped instead (a full spool)."""
        ...


async def wait_spooled(deliver: DeliverFn) -> bool:
    """:meth:`SpoolingDeliver.spooled` of ``deliver``; a plain function has taken a payload when it returns."""
    if isinstance(deliver, SpoolingDeliver):
        return await deliver.spooled()
    return True


class Transport(Protocol):
    """A connection to one device."""

    async def run(self, deliver: DeliverFn, report: ReportFn) -> None:
        """Receive until cancelled; reconnect after drops; never raise for a device problem."""
        ...


TransportFactory = Callable[..., Transport]
"""``factory(device_config, profile, clock_ns) -> Transport``."""


class TransportRegistry:
    """Transport factories by config key (``ble``, ``serial``, ``virtual``...)."""

    def __init__(self) -> None:
        self._factories: dict[str, TransportFactory] = {}
        self._options: dict[str, type | None] = {}
        self._unavailable: dict[str, str] = {}
        self._installed: set[str] = set()

    def add(self, name: str, factory: TransportFactory, *, options: type | None = None) -> None:
        """Register ``factory`` under ``name`` (once).

        ``options`` is the dataclass (with pydantic field types) or pydantic model of the device
        ``options`` the transport accepts; the gateway checks configs against it before starting.
        """
        if name in self._factories:
            raise ValueError(f"transport {name!r} is already registered")
        self._factories[name] = factory
        self._options[name] = options

    def installed(self, name: str) -> None:
        """Note that an installed package provides transport ``name`` (not loaded, as no device uses it)."""
        self._installed.add(name)

    def known_names(self) -> list[str]:
        """Registered transports and those installed packages provide: what a config may name."""
        return sorted(self._installed | set(self._factories))

    def unavailable(self, name: str, reason: str) -> None:
        """Record that transport ``name`` exists but cannot be used here, and why (e.g. a missing package)."""
        self._unavailable[name] = reason

    def why_unavailable(self, name: str) -> str | None:
        """Why transport ``name`` cannot be used (None: it is registered or was never heard of)."""
        return self._unavailable.get(name)

    def options_schema(self, name: str) -> type | None:
        """The options model registered with transport ``name`` (None: not declared)."""
        return self._options.get(name)

    def get(self, name: str) -> TransportFactory:
        """The factory for ``name``; ``KeyError`` lists the known transports."""
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise KeyError(f"unknown transport {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        """Registered transport names."""
        return sorted(self._factories)
