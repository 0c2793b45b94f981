"""The bleak backend's advertisement watch: a BleakScanner detection callback wakes the connection.

No radio here: ``bleak`` is replaced by a stand-in module whose scanner records how it was made
and lets the test play advertisements into its detection callback, as BlueZ would.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any, ClassVar

import pytest

from edge.transports._ble_client import BleakBackend


class StandInScanner:
    made: ClassVar[list[StandInScanner]] = []

    def __init__(self, detection_callback: Any, service_uuids: list[str] | None = None, **kwargs: Any) -> None:
        self.callback = detection_callback
        self.service_uuids = service_uuids
        self.kwargs = kwargs
        self.running = False
        StandInScanner.made.append(self)

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False


class StandInClient:
    made: ClassVar[list[StandInClient]] = []

    def __init__(self, device: Any, disconnected_callback: Any, services: Any = None, **kwargs: Any) -> None:
        self.device = device
        self.is_connected = False
        StandInClient.made.append(self)

    async def connect(self) -> None:
        self.is_connected = True


@pytest.fixture
def bleak(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("bleak")
    module.BleakScanner = StandInScanner  # type: ignore[attr-defined]
    module.BleakClient = StandInClient  # type: ignore[attr-defined]
    StandInScanner.made = []
    StandInClient.made = []
    monkeypatch.setitem(sys.modules, "bleak", module)
    return module


async def test_the_detection_callback_for_the_address_wakes_the_waiting_connection(bleak: types.ModuleType) -> None:
    backend = BleakBackend()
    watch = backend.watch("a4:c1:38:00:00:35", service_uuids=["00001810-0000-1000-8000-00805f9b34fb"])
    await watch.start()
    scanner = StandInScanner.made[0]
    assert scanner.running and scanner.service_uuids == ["00001810-0000-1000-8000-00805f9b34fb"]
    waiting = asyncio.create_task(watch.seen(1.0))
    await asyncio.sleep(0)
    other, cuff = types.SimpleNamespace(address="11:22:33:44:55:66"), types.SimpleNamespace(address="A4:C1:38:00:00:35")
    scanner.callback(other, None)  # someone else's advertisement: still waiting
    await asyncio.sleep(0)
    assert not waiting.done()
    scanner.callback(cuff, None)  # BlueZ reports upper case; the config said lower
    assert await asyncio.wait_for(waiting, 5) is cuff
    client = backend.client("A4:C1:38:00:00:35", lambda: None, service_uuids=[], device=await watch.seen(1.0))
    await client.connect()
    assert client.is_connected and StandInClient.made[0].device is cuff  # connected to what advertised
    await watch.stop()
    assert not scanner.running and not watch.running


async def test_an_advertisement_older_than_the_freshness_window_is_not_used(bleak: types.ModuleType) -> None:
    watch = BleakBackend().watch("A4:C1:38:00:00:35", service_uuids=[])
    await watch.start()
    assert StandInScanner.made[0].service_uuids is None  # no filter: the profile matches on names too
    StandInScanner.made[0].callback(types.SimpleNamespace(address="A4:C1:38:00:00:35"), None)
    watch.forget()  # that advertisement was used for a connection
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watch.seen(1.0), 0.05)
    await watch.stop()
