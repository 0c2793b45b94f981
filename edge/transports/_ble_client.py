"""The small BLE client interface the BLE transport talks to, and its bleak backend.

The transport never touches bleak directly: it asks a ``BleClientFactory`` for a client bound to
one address and a disconnect callback, the way ``bleak.BleakClient`` wraps a platform backend.
Tests pass a factory of fake clients (:mod:`edge.transports._ble_fake`); the gateway uses
:class:`BleakBleClient`, whose bleak import is deferred to the first connect so that importing the
transport costs nothing on a machine without Bluetooth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = [
    "BleClient",
    "BleClientFactory",
    "BleDeviceNotFoundError",
    "BleakBleClient",
    "NotificationCallback",
    "bleak_client_factory",
]

NotificationCallback = Callable[[bytes], None]
"""Called with the value bytes of each notification or indication."""


class BleDeviceNotFoundError(ConnectionError):
    """The device did not advertise within the scan window (out of range, asleep or powered off)."""


class BleClient(Protocol):
    """One GATT connection to one peripheral."""

    @property
    def is_connected(self) -> bool:
        """Whether the link is up as far as the local stack knows."""
        ...

    async def connect(self) -> None:
        """Find the device, connect and discover its services; raise on failure."""
        ...

    async def disconnect(self) -> None:
        """Close the link (idempotent)."""
        ...

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the connected device exposes characteristic ``uuid`` (128-bit, lower case)."""
        ...

    async def start_notify(self, uuid: str, callback: NotificationCallback) -> None:
        """Enable notifications or indications on ``uuid``; ``callback`` gets each value."""
        ...

    async def read(self, uuid: str) -> bytes:
        """Read the current value of ``uuid``."""
        ...

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Write ``data`` to ``uuid``.

        ``response``: send a write request the device acknowledges (control points such as the
        RACP require it) rather than a write command.
        """
        ...


class BleClientFactory(Protocol):
    """Makes a client for ``address``; ``on_disconnect`` is called when the link drops."""

    def __call__(self, address: str, on_disconnect: Callable[[], None], *,
                 service_uuids: Sequence[str], scan_service_uuids: Sequence[str],
                 scan_timeout_s: float) -> BleClient:
        """``service_uuids``: services to resolve; ``scan_service_uuids``: advertisement filter."""
        ...


class BleakBleClient:
    """A :class:`BleClient` over ``bleak.BleakClient``.

    ``connect`` scans for the address first, filtered on the services the profile says the device
    advertises, and connects to the found ``BLEDevice``: bleak advises against connecting by bare
    address, which triggers a hidden scan per attempt.
    """

    def __init__(self, address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
                 scan_service_uuids: Sequence[str], scan_timeout_s: float, bluez: dict[str, Any] | None = None
                 ) -> None:
        self.address = address
        self._on_disconnect = on_disconnect
        self._service_uuids = list(service_uuids)
        self._scan_service_uuids = list(scan_service_uuids)
        self._scan_timeout_s = scan_timeout_s
        self._bluez: dict[str, Any] = dict(bluez or {})
        self._client: Any = None

    @property
    def is_connected(self) -> bool:
        """Whether bleak reports the link as up."""
        return bool(self._client is not None and self._client.is_connected)

    async def connect(self) -> None:
        """Scan for the device (service-UUID filter) and connect; ``BleDeviceNotFoundError`` if unseen."""
        from bleak import BleakClient, BleakScanner

        # Only pass what is set: older bleak releases (>= 0.22 is supported) lack the ``bluez`` argument.
        extra: dict[str, Any] = {"bluez": self._bluez} if self._bluez else {}
        scan_filter: dict[str, Any] = {"service_uuids": self._scan_service_uuids} if self._scan_service_uuids else {}
        device = await BleakScanner.find_device_by_address(
            self.address, timeout=self._scan_timeout_s, **scan_filter, **extra
        )
        if device is None:
            raise BleDeviceNotFoundError(f"{self.address} not seen within {self._scan_timeout_s:g} s")
        self._client = BleakClient(
            device,
            disconnected_callback=lambda _client: self._on_disconnect(),
            services=self._service_uuids or None,
            **extra,
        )
        await self._client.connect()

    async def disconnect(self) -> None:
        """Disconnect if connected; errors of an already dead link are ignored."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.disconnect()

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the discovered services include characteristic ``uuid``."""
        if self._client is None:
            return False
        return self._client.services.get_characteristic(uuid) is not None

    async def start_notify(self, uuid: str, callback: NotificationCallback) -> None:
        """Subscribe; bleak chooses notify or indicate from the characteristic's properties."""
        await self._client.start_notify(uuid, lambda _char, data: callback(bytes(data)))

    async def read(self, uuid: str) -> bytes:
        """Read ``uuid`` from the device (not from a cache)."""
        return bytes(await self._client.read_gatt_char(uuid))

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Write ``uuid`` (a write request when ``response``, else a write command)."""
        await self._client.write_gatt_char(uuid, bytes(data), response=response)


def bleak_client_factory(address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
                         scan_service_uuids: Sequence[str], scan_timeout_s: float) -> BleClient:
    """The default :class:`BleClientFactory`: a :class:`BleakBleClient`."""
    return BleakBleClient(address, on_disconnect, service_uuids=service_uuids,
                          scan_service_uuids=scan_service_uuids, scan_timeout_s=scan_timeout_s)
