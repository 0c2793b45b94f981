"""A cuff that advertises only briefly after each measurement is connected within every window.

Blood-pressure cuffs, scales and glucose meters sleep between measurements and advertise for a
few seconds after one. The fake cuff here advertises for 3 s at a random moment of every minute
(event-loop time runs fast and virtual: ``looptime``), indicates its reading once the gateway
subscribed and hangs up, as such a cuff does. The transport must connect on the advertisement
every time; a gateway that tries on a reconnect timer (a scan of a few seconds, then a growing
backoff) catches only a fraction of the windows, which the last test shows on the same schedule.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from device_profiles import load_profile
from device_profiles.gatt.blood_pressure import BloodPressureMeasurement
from device_profiles.ieee11073 import Measured
from edge.config import DeviceConfig
from edge.transports import Payload
from edge.transports._backoff import Backoff
from edge.transports.ble import BleTransport
from simulators.devices.gatt_encode import encode_blood_pressure_measurement
from tests.ble_fake import FakeBleClient, FakeBlePeripheral
from tests.unit._transport_recorder import Recorder

ADDRESS = "A4:C1:38:00:00:35"
BP_MEASUREMENT = "00002a35-0000-1000-8000-00805f9b34fb"
PROFILE = Path(__file__).parents[2] / "device_profiles" / "library" / "generic" / "bp_cuff.yaml"
PERIOD_S, WINDOW_S, WINDOWS = 60.0, 3.0, 12


def bp_reading(index: int) -> bytes:
    return encode_blood_pressure_measurement(BloodPressureMeasurement(
        Measured.of(110 + index, 0), Measured.of(70 + index, 0), Measured.of(85 + index, 0)))


@dataclass
class Cuff:
    """A sleeping cuff: at a random moment of each period a measurement, then a short advertising window."""

    peripheral: FakeBlePeripheral
    seed: int = 11
    windows: list[tuple[float, float]] = field(default_factory=list)  # (opens, closes), loop time
    pending: bytes | None = None
    sent: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.peripheral.advertising = False
        self.peripheral.on_subscribe = self._on_subscribe

    def _on_subscribe(self, client: FakeBleClient, uuid: str) -> None:
        if uuid != BP_MEASUREMENT or self.pending is None:
            return
        reading, self.pending = self.pending, None

        def send_and_hang_up() -> None:
            client.emit(BP_MEASUREMENT, reading)
            self.sent.append(reading)
            self.peripheral.stop_advertising()
            self.peripheral.drop()

        asyncio.get_running_loop().call_soon(send_and_hang_up)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(self.seed)
        start = loop.time()
        for index in range(WINDOWS):
            opens = start + index * PERIOD_S + rng.uniform(0.0, PERIOD_S - WINDOW_S - 1.0)
            await asyncio.sleep(opens - loop.time())
            self.pending = bp_reading(index)
            self.windows.append((opens, opens + WINDOW_S))
            self.peripheral.start_advertising()
            await asyncio.sleep(WINDOW_S)
            self.pending = None  # a reading not collected in its window waits in the cuff's memory
            self.peripheral.stop_advertising()


@pytest.mark.looptime
async def test_a_cuff_advertising_three_seconds_a_minute_is_connected_within_every_window() -> None:
    loop = asyncio.get_running_loop()
    peripheral = FakeBlePeripheral(ADDRESS, {"2a35": None, "2a36": None})
    cuff = Cuff(peripheral)
    profile = load_profile(PROFILE)
    device = DeviceConfig("cuff-1", "patient-1", profile.id, "ble", ADDRESS)
    transport = BleTransport(device, profile, lambda: round(loop.time() * 1e9), backend=peripheral,
                             rng=random.Random(2))
    recorder = Recorder()
    task = asyncio.create_task(transport.run(recorder.deliver, recorder.report))
    await cuff.run()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    readings = [p for p in recorder.payloads if p.channel == BP_MEASUREMENT]
    assert [p.data for p in readings] == [bp_reading(i) for i in range(WINDOWS)]  # every window, in order
    for payload, (opens, closes) in zip(readings, cuff.windows, strict=True):
        assert opens * 1e9 <= payload.received_ns <= closes * 1e9
    assert transport.stats.sessions == WINDOWS
    assert peripheral.connect_attempts == WINDOWS  # never a blind attempt while the cuff slept
    assert len(peripheral.watches) == 1 and peripheral.watches[0].starts == 1  # one scan, never paused
    assert "unreachable" not in recorder.kinds()


@pytest.mark.looptime
async def test_a_failed_connection_is_retried_at_the_same_window_after_the_backoff() -> None:
    loop = asyncio.get_running_loop()
    peripheral = FakeBlePeripheral(ADDRESS, {"2a35": None})
    peripheral.fail_connects = 1
    cuff = Cuff(peripheral)
    profile = load_profile(PROFILE)
    device = DeviceConfig("cuff-1", "patient-1", profile.id, "ble", ADDRESS, {"reconnect_initial_s": 1})
    transport = BleTransport(device, profile, lambda: round(loop.time() * 1e9), backend=peripheral)
    recorder = Recorder()
    task = asyncio.create_task(transport.run(recorder.deliver, recorder.report))
    await cuff.run()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [p.data for p in recorder.payloads] == [bp_reading(i) for i in range(WINDOWS)]
    assert recorder.kinds()[0] == "unreachable"
    assert peripheral.connect_attempts == WINDOWS + 1


@pytest.mark.looptime
async def test_a_radio_that_cannot_scan_is_reported_and_the_scan_retried() -> None:
    peripheral = FakeBlePeripheral(ADDRESS, {"2a35": None})
    peripheral.fail_scans = 2
    profile = load_profile(PROFILE)
    device = DeviceConfig("cuff-1", "patient-1", profile.id, "ble", ADDRESS)
    recorder = Recorder()
    transport = BleTransport(device, profile, lambda: 0, backend=peripheral)
    task = asyncio.create_task(transport.run(recorder.deliver, recorder.report))
    await recorder.until(lambda: "attached" in recorder.kinds())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.kinds()[:2] == ["unreachable", "attached"]
    assert "Bluetooth service" in recorder.reports[0][1]["reason"]
    assert peripheral.watches[0].starts == 1 and peripheral.fail_scans == 0


@pytest.mark.looptime
async def test_the_same_windows_defeat_a_gateway_that_connects_on_a_timer() -> None:
    """The old way, on the same cuff: scan for 20 s per attempt, back off between attempts.

    Shows the schedule above is a real test: most windows pass while such a gateway sleeps.
    """
    loop = asyncio.get_running_loop()
    peripheral = FakeBlePeripheral(ADDRESS, {"2a35": None})
    cuff = Cuff(peripheral)
    received: list[Payload] = []

    async def timer_only_gateway() -> None:
        backoff = Backoff.for_reconnects(1.0, 60.0, random.Random(2))
        while True:
            deadline = loop.time() + 20.0  # one scan window per attempt
            while not peripheral.advertising and loop.time() < deadline:
                await asyncio.sleep(0.1)
            if peripheral.advertising:
                client = peripheral.client(ADDRESS, lambda: None, service_uuids=(), device=None)
                await client.connect()
                await client.start_notify(BP_MEASUREMENT, lambda data: received.append(Payload(BP_MEASUREMENT, data,
                                                                                                0)))
                await asyncio.sleep(1.0)
            await asyncio.sleep(backoff.next_delay())  # a short session or a miss: the delay grows

    task = asyncio.create_task(timer_only_gateway())
    await cuff.run()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(received) <= WINDOWS // 2  # most windows missed
