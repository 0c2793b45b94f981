"""The small BLE client interface the BLE transport talks to, and its bleak backend.

The transport never touches bleak directly: it asks a :class:`BleBackend` for an advertisement
watch and for clients bound to one address and a disconnect callback, the way ``bleak.BleakClient``
wraps a platform backend. The gateway uses :class:`BleakBackend`, whose bleak import is deferred to
the first scan so that importing the transport costs nothing on a machine without Bluetooth; tests
pass an in-memory peripheral that plays the radio.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = [
    "AdvertisementWatch",
    "BleBackend",
    "BleClient",
    "BleDeviceNotFoundError",
    "BleakAdvertisementWatch",
    "BleakBackend",
    "BleakBleClient",
    "NotificationCallback",
]

NotificationCallback = Callable[[bytes], None]
"""Called with the value bytes of each notification or indication."""


class BleDeviceNotFoundError(ConnectionError):
    """The device is not advertising (out of range, asleep or powered off)."""


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


class AdvertisementWatch:
    """Listens for one device's advertisements, so a connection starts the moment it advertises.

    Blood-pressure cuffs, scales and glucose meters advertise for a few seconds after a measurement
    and are asleep otherwise: a gateway that scanned only now and then, between reconnect delays,
    would miss most of those windows. The watch scans without pause between :meth:`start` and
    :meth:`stop`; the backend calls :meth:`saw` for each advertisement of the device, with the
    handle a client connects to (bleak's ``BLEDevice``). This base class keeps the bookkeeping;
    a backend overrides :meth:`start` and :meth:`stop`.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.advertisements = 0
        self._handle: Any = None
        self._seen_at: float | None = None
        self._changed: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        """Whether the watch is scanning."""
        return False

    async def start(self) -> None:
        """Start scanning (idempotent); raise when the radio cannot scan."""

    async def stop(self) -> None:
        """Stop scanning (idempotent); never raises."""

    def saw(self, handle: Any) -> None:
        """Note one advertisement of the device (called by the backend on the event loop's thread)."""
        self.advertisements += 1
        self._handle = handle
        self._seen_at = asyncio.get_running_loop().time()
        if self._changed is not None:
            self._changed.set()

    def forget(self) -> None:
        """Drop the last advertisement, e.g. once a connection to it was attempted."""
        self._seen_at = None

    async def seen(self, fresh_s: float) -> Any:
        """Wait until the device advertises (or did within the last ``fresh_s`` seconds); its handle."""
        loop = asyncio.get_running_loop()
        while self._seen_at is None or loop.time() - self._seen_at > fresh_s:
            self._changed = asyncio.Event()
            await self._changed.wait()
        return self._handle


class BleBackend(Protocol):
    """Where BLE links come from: bleak on a gateway, an in-memory peripheral in tests."""

    def client(self, address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
               device: Any) -> BleClient:
        """A client for ``address``; ``device`` is the handle the watch saw advertising;
        ``on_disconnect`` is called when the link drops; ``service_uuids``: services to resolve."""
        ...

    def watch(self, address: str, *, service_uuids: Sequence[str]) -> AdvertisementWatch:
        """An advertisement watch for ``address`` (``service_uuids``: the scan filter, empty for none)."""
        ...


class BleakAdvertisementWatch(AdvertisementWatch):
    """An :class:`AdvertisementWatch` over a ``bleak.BleakScanner`` with a detection callback.

    The scan is filtered on the services the profile says the device advertises (BlueZ then
    wakes the gateway only for such devices) and the callback keeps the advertisements of this
    address (compared without case: BlueZ reports upper case, configs may be written in lower).
    """

    def __init__(self, address: str, *, service_uuids: Sequence[str], bluez: dict[str, Any] | None = None) -> None:
        super().__init__(address)
        self._service_uuids = list(service_uuids)
        self._bluez: dict[str, Any] = dict(bluez or {})
        self._scanner: Any = None

    @property
    def running(self) -> bool:
        """Whether the scanner was started and not stopped."""
        return self._scanner is not None

    async def start(self) -> None:
        """Start a ``BleakScanner`` (bleak is imported here, so importing the transport needs no Bluetooth)."""
        if self._scanner is not None:
            return
        from bleak import BleakScanner

        extra: dict[str, Any] = {"bluez": self._bluez} if self._bluez else {}
        scanner = BleakScanner(detection_callback=self._on_advertisement,
                               service_uuids=self._service_uuids or None, **extra)
        await scanner.start()
        self._scanner = scanner

    async def stop(self) -> None:
        """Stop the scanner; errors of a radio already gone are ignored."""
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            with contextlib.suppress(Exception):
                await scanner.stop()

    def _on_advertisement(self, device: Any, _advertisement: Any) -> None:
        if str(device.address).upper() == self.address.upper():
            self.saw(device)


class BleakBackend:
    """The gateway's :class:`BleBackend`: :class:`BleakAdvertisementWatch` and :class:`BleakBleClient`."""

    def __init__(self, bluez: dict[str, Any] | None = None) -> None:
        self._bluez = dict(bluez or {})

    def client(self, address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
               device: Any) -> BleClient:
        """A :class:`BleakBleClient` connecting to the advertised ``device``."""
        return BleakBleClient(address, on_disconnect, service_uuids=service_uuids, device=device, bluez=self._bluez)

    def watch(self, address: str, *, service_uuids: Sequence[str]) -> AdvertisementWatch:
        """A :class:`BleakAdvertisementWatch` for ``address``."""
        return BleakAdvertisementWatch(address, service_uuids=service_uuids, bluez=self._bluez)


class BleakBleClient:
    """A :class:`BleClient` over ``bleak.BleakClient``.

    It connects to the ``BLEDevice`` the advertisement watch saw: bleak advises against connecting
    by bare address, which triggers a hidden scan per attempt.
    """

    def __init__(self, address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
                 device: Any, bluez: dict[str, Any] | None = None) -> None:
        self.address = address
        self._on_disconnect = on_disconnect
        self._service_uuids = list(service_uuids)
        self._device = device
        self._bluez: dict[str, Any] = dict(bluez or {})
        self._client: Any = None

    @property
    def is_connected(self) -> bool:
        """Whether bleak reports the link as up."""
        return bool(self._client is not None and self._client.is_connected)

    async def connect(self) -> None:
        """Connect to the advertised device and discover its services."""
        from bleak import BleakClient

        if self._device is None:
            raise BleDeviceNotFoundError(f"{self.address} has not advertised")
        # Only pass what is set: older bleak releases (>= 0.22 is supported) lack the ``bluez`` argument.
        extra: dict[str, Any] = {"bluez": self._bluez} if self._bluez else {}
        self._client = BleakClient(
            self._device,
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
