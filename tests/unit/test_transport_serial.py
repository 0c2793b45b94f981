"""The serial transport: line settings, frame timing, and a virtual device on a real pty."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
import serial

from device_profiles import DeviceProfile, load_library
from device_profiles.registry import DecodeContext, default_registry
from device_profiles.serial.framing import Frame
from edge.config import DeviceConfig
from edge.transports import Payload, TransportRegistry
from edge.transports.ble import BleTransport
from edge.transports.builtin import register_builtins
from edge.transports.serial import SerialOptions, SerialTransport, frame_times_ns, line_settings, symbol_time_ns
from simulators.devices.pty_serial import PtySerialDevice, masimo_rad8_lines, nonin_xpod_packets
from tests.unit._transport_recorder import Recorder

NOW_NS = 1_700_000_000_000_000_000
FAST_RECONNECT = {"reconnect_initial_s": 0.01, "reconnect_max_s": 0.05}


@pytest.fixture(scope="module")
def profiles() -> dict[str, DeviceProfile]:
    return load_library()


def test_line_settings_come_from_the_profile_and_options_may_override_the_rate(
        profiles: dict[str, DeviceProfile]) -> None:
    nonin = profiles["nonin.xpod"].serial
    assert nonin is not None
    assert line_settings(nonin) == {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}
    assert line_settings(nonin, 19200)["baudrate"] == 19200
    assert SerialOptions.from_options({"baud": 19200, "idle_timeout_s": 2}) == SerialOptions(baud=19200,
                                                                                          idle_timeout_s=2.0)
    with pytest.raises(ValueError, match=r"^baud: expected a whole number, not 9600.5$"):
        SerialOptions.from_options({"baud": 9600.5})
    with pytest.raises(ValueError, match=r"^bauds: unknown field; expected one of: baud, idle_timeout_s, "):
        SerialOptions.from_options({"bauds": 9600})
    with pytest.raises(ValueError, match="reconnect_max_s"):
        SerialOptions.from_options({"reconnect_max_s": 0})


def test_character_time_counts_start_parity_and_stop_bits() -> None:
    assert symbol_time_ns({"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}) == pytest.approx(
        10 / 9600 * 1e9)
    assert symbol_time_ns({"baudrate": 1200, "bytesize": 7, "parity": "E", "stopbits": 2}) == pytest.approx(
        11 / 1200 * 1e9)


def test_frames_completed_by_one_read_are_dated_back_by_line_time() -> None:
    frames = [Frame("a", b"x" * 10), Frame("b", b"y" * 5), Frame("a", b"z" * 2)]
    assert frame_times_ns(frames, NOW_NS, 1000.0) == [NOW_NS - 7000, NOW_NS - 2000, NOW_NS]
    assert frame_times_ns([], NOW_NS, 1000.0) == []


def test_builtins_register_ble_and_serial() -> None:
    registry = TransportRegistry()
    register_builtins(registry)
    assert registry.names() == ["ble", "serial"]
    assert registry.get("ble") is BleTransport
    assert registry.get("serial") is SerialTransport


async def test_two_packets_in_one_read_become_two_payloads_and_a_read_error_is_an_unplug(
        profiles: dict[str, DeviceProfile]) -> None:
    profile = profiles["nonin.xpod"]
    packets = list(nonin_xpod_packets(3))
    readers: list[asyncio.StreamReader] = []
    opened: list[dict[str, Any]] = []

    async def open_connection(**settings: Any) -> tuple[asyncio.StreamReader, Any]:
        opened.append(settings)
        if len(opened) == 2:
            raise serial.SerialException("[Errno 2] could not open port /dev/ttyUSB0")
        reader = asyncio.StreamReader()
        readers.append(reader)
        return reader, _NullWriter()

    recorder, sleeps = Recorder(), []

    async def sleep(delay_s: float) -> None:
        sleeps.append(delay_s)
        await asyncio.sleep(0)

    device = DeviceConfig("xpod-1", "patient-1", "nonin.xpod", "serial", "/dev/ttyUSB0")
    transport = SerialTransport(device, profile, lambda: NOW_NS, open_connection=open_connection, sleep=sleep,
                                rng=random.Random(1))
    task = asyncio.create_task(transport.run(recorder.deliver, recorder.report))
    await recorder.until(lambda: recorder.kinds() == ["attached"])
    assert opened[0] == {"url": "/dev/ttyUSB0", "baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}
    readers[0].feed_data(b"\x17\x42" + packets[0] + packets[1] + packets[2][:60])  # noise, 2 packets, a partial one
    await recorder.until(lambda: len(recorder.payloads) == 2)
    char_ns = 10 / 9600 * 1e9
    assert recorder.payloads == [Payload("df2_packet", packets[0], NOW_NS - round(125 * char_ns)),
                                 Payload("df2_packet", packets[1], NOW_NS)]
    readers[0].feed_data(packets[2][60:])
    await recorder.until(lambda: len(recorder.payloads) == 3)
    assert recorder.payloads[2] == Payload("df2_packet", packets[2], NOW_NS)
    assert transport.stats.discarded_bytes == 2

    readers[0].set_exception(serial.SerialException("device reports readiness to read but returned no data"))
    await recorder.until(lambda: recorder.kinds() == ["attached", "lost", "unreachable", "attached"])
    assert recorder.reports[1] == ("lost", {"transport": "serial", "port": "/dev/ttyUSB0",
                                            "reason": "device reports readiness to read but returned no data"})
    assert recorder.reports[2] == ("unreachable", {  # the failed reopen, in words a person can act on
        "transport": "serial", "port": "/dev/ttyUSB0", "attempts": 1,
        "reason": "port /dev/ttyUSB0 does not exist: is the device (or its USB cable) plugged in?"})
    assert len(sleeps) == 2  # after the loss, and after the failed reopen
    assert 0.75 <= sleeps[0] <= 1.0 and 1.5 <= sleeps[1] <= 2.0
    decoded = profile.decoder_for("df2_packet", default_registry())(packets[0], DecodeContext(received_ns=NOW_NS))
    assert {s.metric for s in decoded.samples} == {"ppg", "pulse_rate", "spo2"}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.reports[-1][1]["reason"] == "stopped"


class _NullWriter:
    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


async def test_reads_a_virtual_nonin_on_a_pty_and_comes_back_after_unplug(
        tmp_path: Path, profiles: dict[str, DeviceProfile]) -> None:
    packets = list(nonin_xpod_packets(25))  # the pleth repeats every 25 packets at 72/min
    link = tmp_path / "ttyXPOD"
    recorder = Recorder()
    async with PtySerialDevice(packets * 40, period_s=0.02, link=link) as virtual:
        assert link.is_symlink()
        device = DeviceConfig("xpod-1", "patient-1", "nonin.xpod", "serial", virtual.port, FAST_RECONNECT)
        transport = SerialTransport(device, profiles["nonin.xpod"], lambda: NOW_NS)
        task = asyncio.create_task(transport.run(recorder.deliver, recorder.report))
        await recorder.until(lambda: len(recorder.payloads) >= 5)
        _assert_consecutive_packets(recorder.payloads, packets)

        virtual.unplug()
        assert not link.exists()
        await recorder.until(lambda: "lost" in recorder.kinds())
        before = len(recorder.payloads)
        virtual.plug()
        await recorder.until(lambda: recorder.kinds().count("attached") == 2 and len(recorder.payloads) >= before + 5)
        assert recorder.kinds()[:3] == ["attached", "lost", "attached"]
        _assert_consecutive_packets(recorder.payloads[before:], packets)
        assert transport.stats.sessions == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not link.exists()


def _assert_consecutive_packets(payloads: list[Payload], packets: list[bytes]) -> None:
    """Every payload is a whole packet of the device, in the order it sent them (first may be cut)."""
    assert all(p.channel == "df2_packet" for p in payloads)
    first = packets.index(payloads[0].data)
    assert [p.data for p in payloads] == [packets[(first + i) % len(packets)] for i in range(len(payloads))]


async def test_reads_masimo_lines_from_a_pty(profiles: dict[str, DeviceProfile]) -> None:
    import datetime as dt

    lines = list(masimo_rad8_lines(dt.datetime(2024, 3, 1, 12, 0, 0), 200))
    recorder = Recorder()
    async with PtySerialDevice(lines, period_s=0.01) as virtual:
        profile = profiles["masimo.rad8"]
        frame = profile.decoder_keys()[0]
        device = DeviceConfig("rad8-1", "patient-1", profile.id, "serial", virtual.port, FAST_RECONNECT)
        task = asyncio.create_task(SerialTransport(device, profile, lambda: NOW_NS).run(recorder.deliver,
                                                                                         recorder.report))
        await recorder.until(lambda: len(recorder.payloads) >= 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    stripped = [line.rstrip(b"\r\n") for line in lines]
    assert all(p.channel == frame for p in recorder.payloads)
    first = stripped.index(recorder.payloads[0].data)
    assert [p.data for p in recorder.payloads] == stripped[first:first + len(recorder.payloads)]
