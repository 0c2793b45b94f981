"""The BLE transport against a fake peripheral that sends the exact bytes a real device notifies."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from device_profiles import DeviceProfile, load_profile
from device_profiles.gatt.battery import BatteryLevel
from device_profiles.gatt.heart_rate import HeartRateMeasurement, SensorContact
from device_profiles.gatt.temperature import TemperatureMeasurement
from device_profiles.ieee11073 import Measured
from device_profiles.registry import DecodeContext, default_registry
from edge.config import DeviceConfig
from edge.transports import Payload
from edge.transports.ble import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    BleOptions,
    BleTransport,
)
from simulators.devices.gatt_encode import (
    encode_battery_level,
    encode_heart_rate_measurement,
    encode_temperature_measurement,
)
from tests.ble_fake import FakeBlePeripheral
from tests.unit._transport_recorder import Recorder
from vitals.samples import Sample

ADDRESS = "C4:7F:51:0A:11:22"
HR = "00002a37-0000-1000-8000-00805f9b34fb"
TEMPERATURE = "00002a1c-0000-1000-8000-00805f9b34fb"
HR_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
NOW_NS = 1_700_000_000_000_000_000

HR_72 = encode_heart_rate_measurement(HeartRateMeasurement(72, SensorContact.DETECTED))
TEMP_36_6 = encode_temperature_measurement(TemperatureMeasurement(Measured(36.6, exponent=-1)))

_PROFILE = """
schema_version: 1
id: acme.strap
vendor: Acme
model: Strap
streams:
  heart_rate: {unit: "/min"}
  rr_interval: {unit: "ms"}
  body_temperature: {unit: "Cel"}
transport:
  ble:
    match: {service_uuids: ["180d"]}
    characteristics:
      - {name: heart_rate, service: "180d", uuid: "2a37", mode: notify, decoder: gatt.heart_rate_measurement}
      - {name: temperature, service: "1809", uuid: "2a1c", mode: indicate, decoder: gatt.temperature_measurement}\
BATTERY
examples:
  - {characteristic: heart_rate, hex: "0648", expect: {samples: [{metric: heart_rate, value: 72}]}}
"""

_BATTERY_READ = """
      - {name: battery_level, service: "180f", uuid: "2a19", mode: read, poll_s: 3600, decoder: gatt.battery_level}"""


def write_profile(root: Path, *, battery: bool = False) -> DeviceProfile:
    """A chest strap: heart rate (notify) and a thermometer (indicate), loaded by the real loader."""
    path = root / "acme" / "strap.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PROFILE.replace("BATTERY", _BATTERY_READ if battery else ""))
    return load_profile(path)


class Clock:
    """A settable clock (ns)."""

    def __init__(self) -> None:
        self.now_ns = NOW_NS

    def __call__(self) -> int:
        return self.now_ns


def make_transport(profile: DeviceProfile, peripheral: FakeBlePeripheral, recorder: Recorder, clock: Clock,
                   **options: Any) -> BleTransport:
    device = DeviceConfig("strap-1", "patient-1", profile.id, "ble", ADDRESS, options)
    return BleTransport(device, profile, clock, backend=peripheral, sleep=recorder.sleep,
                        rng=random.Random(7))


def strap(**extra: bytes | None) -> FakeBlePeripheral:
    return FakeBlePeripheral(ADDRESS, {"2a37": None, "2a1c": None, **extra})


async def start(transport: BleTransport, recorder: Recorder) -> asyncio.Task[None]:
    return asyncio.create_task(transport.run(recorder.deliver, recorder.report))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_subscribes_notify_and_indicate_and_delivers_exact_bytes_with_uuid_and_clock(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, battery=True)
    peripheral, recorder, clock = strap(**{"2a19": encode_battery_level(BatteryLevel(64))}), Recorder(), Clock()
    task = await start(make_transport(profile, peripheral, recorder, clock), recorder)
    await recorder.until(lambda: "attached" in recorder.kinds() and len(recorder.payloads) == 1)
    client = peripheral.current
    assert client is not None
    assert set(client.subscriptions) == {HR, TEMPERATURE}  # the read-mode battery is polled, not subscribed
    assert peripheral.watches[0].service_uuids == (HR_SERVICE,)  # the scan is filtered on the profile's services
    assert BATTERY_SERVICE_UUID in client.service_uuids
    assert recorder.payloads == [Payload(BATTERY_LEVEL_UUID, b"\x40", NOW_NS)]

    clock.now_ns = NOW_NS + 5
    assert peripheral.notify("2a37", HR_72)
    clock.now_ns = NOW_NS + 9
    assert peripheral.notify("2a1c", TEMP_36_6)
    await recorder.until(lambda: len(recorder.payloads) == 3)
    assert recorder.payloads[1:] == [Payload(HR, HR_72, NOW_NS + 5), Payload(TEMPERATURE, TEMP_36_6, NOW_NS + 9)]
    assert recorder.reports == [("attached", {"transport": "ble", "address": ADDRESS,
                                              "subscribed": ["heart_rate", "temperature"]})]
    # The channel is what the agent looks the decoder up by: the whole path decodes.
    decode = profile.decoder_for(HR, default_registry())
    result = decode(recorder.payloads[1].data, DecodeContext(received_ns=NOW_NS + 5))
    assert result.samples == (Sample("heart_rate", NOW_NS + 5, 72.0),)
    await stop(task)
    assert recorder.reports[-1] == ("lost", {"transport": "ble", "address": ADDRESS, "reason": "stopped"})
    assert client.disconnect_calls == 1


async def test_battery_is_read_on_connect_when_the_profile_does_not_list_it(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = strap(**{"2a19": encode_battery_level(BatteryLevel(87))}), Recorder()
    task = await start(make_transport(profile, peripheral, recorder, Clock()), recorder)
    await recorder.until(lambda: "battery" in recorder.kinds())
    assert recorder.kinds() == ["attached", "battery"]
    assert recorder.reports[1] == ("battery", {"percent": 87})
    assert peripheral.reads == [BATTERY_LEVEL_UUID]
    assert recorder.payloads == []
    await stop(task)


async def test_reconnects_after_a_drop_and_drops_stale_notifications_of_the_old_link(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder, clock = strap(), Recorder(), Clock()
    transport = make_transport(profile, peripheral, recorder, clock)
    task = await start(transport, recorder)
    await recorder.until(lambda: recorder.kinds() == ["attached"])
    first = peripheral.current
    assert first is not None
    peripheral.drop()
    await recorder.until(lambda: recorder.kinds() == ["attached", "lost", "attached"])
    assert recorder.reports[1] == ("lost", {"transport": "ble", "address": ADDRESS, "reason": "disconnected"})
    second = peripheral.current
    assert second is not None and second is not first
    assert set(second.subscriptions) == {HR, TEMPERATURE}
    # A notification the old link still had queued arrives late: it must not be delivered.
    assert first.emit("2a37", HR_72)
    assert recorder.payloads == []
    assert transport.stats.stale_notifications == 1
    clock.now_ns += 1_000
    assert peripheral.notify("2a37", HR_72)
    await recorder.until(lambda: len(recorder.payloads) == 1)
    assert recorder.payloads == [Payload(HR, HR_72, NOW_NS + 1_000)]
    assert len(recorder.sleeps) == 1 and 0.75 <= recorder.sleeps[0] <= 1.0
    assert transport.stats.sessions == 2
    await stop(task)


async def test_backoff_grows_while_connects_fail_and_resets_only_after_a_stable_connection(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder, clock = strap(), Recorder(), Clock()
    peripheral.fail_connects = 5
    transport = make_transport(profile, peripheral, recorder, clock, reconnect_initial_s=1, reconnect_max_s=8,
                               stable_after_s=30)
    task = await start(transport, recorder)
    await recorder.until(lambda: recorder.kinds() == ["unreachable", "attached"])  # the first failure is told
    assert recorder.reports[0] == ("unreachable", {"transport": "ble", "address": ADDRESS, "attempts": 1,
                                                   "reason": recorder.reports[0][1]["reason"]})
    ceilings = [1, 2, 4, 8, 8]
    assert len(recorder.sleeps) == 5
    for delay, ceiling in zip(recorder.sleeps, ceilings, strict=True):
        assert 0.75 * ceiling <= delay <= ceiling
    assert peripheral.connect_attempts == 6

    clock.now_ns += 31 * 10**9  # the link stays up longer than stable_after_s
    peripheral.drop()
    await recorder.until(lambda: recorder.kinds().count("attached") == 2)
    assert 0.75 <= recorder.sleeps[5] <= 1.0

    peripheral.drop()  # drops right after connecting: no reset, the delay keeps growing
    await recorder.until(lambda: recorder.kinds().count("attached") == 3)
    assert 1.5 <= recorder.sleeps[6] <= 2.0
    await stop(task)


async def test_a_connect_that_hangs_is_timed_out_and_retried(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = strap(), Recorder()
    peripheral.hang_connects = 1
    task = await start(make_transport(profile, peripheral, recorder, Clock(), connect_timeout_s=0.05), recorder)
    await recorder.until(lambda: recorder.kinds() == ["unreachable", "attached"])
    assert recorder.reports[0][1]["reason"] == ("did not answer within 0.05 s: is it switched on and within a few "
                                                "metres?")
    assert peripheral.connect_attempts == 2
    assert len(recorder.sleeps) == 1
    assert peripheral.clients[0].disconnect_calls == 1  # the stalled attempt is cleaned up
    await stop(task)


async def test_a_link_lost_without_disconnect_callback_is_noticed(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = strap(), Recorder()
    task = await start(make_transport(profile, peripheral, recorder, Clock(), liveness_check_s=0.01), recorder)
    await recorder.until(lambda: recorder.kinds() == ["attached"])
    peripheral.drop(callback=False)
    await recorder.until(lambda: recorder.kinds() == ["attached", "lost", "attached"])
    assert recorder.reports[1][1]["reason"] == "link down without a disconnect event"
    await stop(task)


async def test_a_streaming_device_gone_quiet_is_reconnected(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = strap(), Recorder()
    task = await start(make_transport(profile, peripheral, recorder, Clock(), idle_timeout_s=0.05), recorder)
    await recorder.until(lambda: "lost" in recorder.kinds())
    assert recorder.reports[1][1]["reason"] == "no data for 0.05 s"
    await stop(task)


async def test_a_device_without_the_profile_characteristics_is_never_attached(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = FakeBlePeripheral(ADDRESS, {"2a19": b"\x10"}), Recorder()
    task = await start(make_transport(profile, peripheral, recorder, Clock()), recorder)
    await recorder.until(lambda: len(recorder.sleeps) >= 3)
    await stop(task)
    assert recorder.kinds() == ["unreachable"]  # the first failure of the streak, never "attached"
    assert all(client.disconnect_calls == 1 for client in peripheral.clients[:3])


async def test_a_missing_optional_characteristic_is_reported_and_the_rest_subscribed(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = FakeBlePeripheral(ADDRESS, {"2a37": None}), Recorder()
    task = await start(make_transport(profile, peripheral, recorder, Clock()), recorder)
    await recorder.until(lambda: recorder.kinds() == ["attached"])
    assert recorder.reports[0][1]["subscribed"] == ["heart_rate"]
    assert recorder.reports[0][1]["missing"] == ["temperature"]
    await stop(task)


async def test_a_failing_consumer_does_not_break_the_link(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    peripheral, recorder = strap(), Recorder()
    calls: list[Payload] = []

    def deliver(payload: Payload) -> None:
        calls.append(payload)
        raise RuntimeError("consumer bug")

    transport = make_transport(profile, peripheral, recorder, Clock())
    task = asyncio.create_task(transport.run(deliver, recorder.report))
    await recorder.until(lambda: recorder.kinds() == ["attached"])
    assert peripheral.notify("2a37", HR_72) and peripheral.notify("2a37", HR_72)
    assert len(calls) == 2
    assert recorder.kinds() == ["attached"]
    await stop(task)


def test_options_are_validated_and_the_profile_must_be_ble(tmp_path: Path) -> None:
    assert BleOptions.from_options({"connect_timeout_s": 5, "state_dir": "/var/lib/vb"}) == BleOptions(
        connect_timeout_s=5.0, state_dir="/var/lib/vb")
    with pytest.raises(ValueError, match=r"^conect_timeout_s: unknown field; expected one of: battery_poll_s, "):
        BleOptions.from_options({"conect_timeout_s": 5})  # a typo is a mistake, not ignored
    with pytest.raises(ValueError, match=r"^connect_timeout_s: expected a number greater than 0, not -1$"):
        BleOptions.from_options({"connect_timeout_s": -1})
    with pytest.raises(ValueError, match=r"^idle_timeout_s: expected a number, not True$"):
        BleOptions.from_options({"idle_timeout_s": True})
    with pytest.raises(ValueError, match=r"^state_dir: expected a text, not 3$"):
        BleOptions.from_options({"state_dir": 3})
    serial_profile = load_profile(Path(__file__).parents[2] / "device_profiles" / "library" / "nonin" / "xpod.yaml")
    device = DeviceConfig("x", "p", serial_profile.id, "ble", ADDRESS)
    with pytest.raises(ValueError, match="no BLE attributes"):
        BleTransport(device, serial_profile, Clock())
    ble_profile = write_profile(tmp_path)
    with pytest.raises(ValueError, match="needs its address"):
        BleTransport(DeviceConfig("x", "p", ble_profile.id, "ble"), ble_profile, Clock())
