"""An in-memory BLE peripheral and client: the testing seam of the BLE transport (no radio needed).

A :class:`FakeBlePeripheral` holds the device's GATT table (characteristic UUID -> readable
value) and plays the radio: :meth:`~FakeBlePeripheral.notify` sends the exact bytes a real device
notifies, :meth:`~FakeBlePeripheral.drop` loses the link (with or without the disconnect callback
that BlueZ sometimes never sends), and ``fail_connects`` / ``hang_connects`` make the next
connection attempts fail or stall. Pass ``peripheral.client_factory`` as the BLE transport's
``client_factory``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from device_profiles.profile import normalize_uuid
from edge.transports._ble_client import BleClient, NotificationCallback

__all__ = ["FakeBleClient", "FakeBlePeripheral"]


class FakeBleClient:
    """One connection attempt to a :class:`FakeBlePeripheral`; implements ``BleClient``."""

    def __init__(self, peripheral: FakeBlePeripheral, address: str, on_disconnect: Callable[[], None],
                 service_uuids: Sequence[str], scan_service_uuids: Sequence[str]) -> None:
        self.peripheral = peripheral
        self.address = address
        self.service_uuids = tuple(service_uuids)
        self.scan_service_uuids = tuple(scan_service_uuids)
        self.subscriptions: dict[str, NotificationCallback] = {}
        self.disconnect_calls = 0
        self._on_disconnect = on_disconnect
        self._connected = False

    @property
    def is_connected(self) -> bool:
        """Whether this link is up."""
        return self._connected

    async def connect(self) -> None:
        """Connect, unless the peripheral was told to fail or stall this attempt."""
        peripheral = self.peripheral
        peripheral.connect_attempts += 1
        if peripheral.hang_connects > 0:
            peripheral.hang_connects -= 1
            await asyncio.Event().wait()  # a connect that never completes; the caller's timeout ends it
        if peripheral.fail_connects > 0:
            peripheral.fail_connects -= 1
            raise ConnectionError(f"{self.address}: connection failed (simulated)")
        self._connected = True
        peripheral.current = self

    async def disconnect(self) -> None:
        """Close the link; like bleak, the disconnect callback fires for a link that was up."""
        self.disconnect_calls += 1
        self._lose(callback=True)

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the peripheral's GATT table has ``uuid``."""
        return normalize_uuid(uuid) in self.peripheral.characteristics

    async def start_notify(self, uuid: str, callback: NotificationCallback) -> None:
        """Subscribe ``callback`` to ``uuid``."""
        if not self._connected:
            raise ConnectionError("not connected")
        uuid = normalize_uuid(uuid)
        if uuid not in self.peripheral.characteristics:
            raise KeyError(f"characteristic {uuid} not found")
        self.subscriptions[uuid] = callback

    async def read(self, uuid: str) -> bytes:
        """The characteristic's current value; ``ConnectionError`` on a dead link."""
        if not self._connected:
            raise ConnectionError("not connected")
        uuid = normalize_uuid(uuid)
        self.peripheral.reads.append(uuid)
        value = self.peripheral.characteristics.get(uuid)
        if value is None:
            raise KeyError(f"characteristic {uuid} is not readable")
        return value

    def emit(self, uuid: str, data: bytes) -> bool:
        """Invoke this client's callback for ``uuid`` whatever the link state (a late notification)."""
        callback = self.subscriptions.get(normalize_uuid(uuid))
        if callback is None:
            return False
        callback(bytes(data))
        return True

    def _lose(self, *, callback: bool) -> None:
        was_connected, self._connected = self._connected, False
        if self.peripheral.current is self:
            self.peripheral.current = None
        if was_connected and callback:
            self._on_disconnect()


class FakeBlePeripheral:
    """A BLE device in memory: GATT table, notifications, link loss and connect failures.

    ``characteristics`` maps each characteristic UUID (any form) to its readable value, or to
    ``None`` for a notify-only characteristic.
    """

    def __init__(self, address: str, characteristics: Mapping[str, bytes | None]) -> None:
        self.address = address
        self.characteristics: dict[str, bytes | None] = {
            normalize_uuid(uuid): value for uuid, value in characteristics.items()
        }
        self.fail_connects = 0
        self.hang_connects = 0
        self.connect_attempts = 0
        self.reads: list[str] = []
        self.clients: list[FakeBleClient] = []
        self.current: FakeBleClient | None = None

    def client_factory(self, address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
                       scan_service_uuids: Sequence[str], scan_timeout_s: float) -> BleClient:
        """A ``BleClientFactory``: a new :class:`FakeBleClient` for each connection attempt."""
        del scan_timeout_s  # nothing to scan for in memory
        if address != self.address:
            raise ValueError(f"this fake peripheral is {self.address}, not {address}")
        client = FakeBleClient(self, address, on_disconnect, service_uuids, scan_service_uuids)
        self.clients.append(client)
        return client

    def notify(self, uuid: str, data: bytes) -> bool:
        """Send a notification on the live link; False when nobody is subscribed to ``uuid``."""
        if self.current is None:
            return False
        return self.current.emit(uuid, data)

    def drop(self, *, callback: bool = True) -> None:
        """Lose the link, e.g. the patient walked out of range; ``callback=False`` loses it silently."""
        if self.current is not None:
            self.current._lose(callback=callback)
