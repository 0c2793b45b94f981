"""Virtual pulse oximeters: the Bluetooth PLX one and two serial monitors, Nonin Xpod and Masimo Rad-8.

The Bluetooth one (:class:`VirtualPulseOximeter`, PLX Continuous 0x2A5F notifications) is a row of
:mod:`simulators.devices.virtual_ble`, re-exported here. The serial ones turn scenario readings
into the exact bytes the device writes on its line (:mod:`simulators.devices.serial_encode`), each
with the time its last byte leaves the device; the gateway cuts them into frames with the
profile's framer, as it would bytes read from a port (or serve them on a pty with
:class:`~simulators.devices.pty_serial.PtySerialDevice`). Neither device sends a time stamp
the gateway uses, so the bytes' time is the reading's time.

- :class:`VirtualNoninXpod`: a Data Format #2 packet (25 frames at 75 Hz) every 1/3 s on a fixed
  grid from the run's start, each carrying the newest SpO2 and pulse rate (4-beat averages on the
  real device; here the scenario's latest reading, held up to ``hold_s``) and 25 plethysmogram
  bytes: the scenario's ``ppg`` waveform when the chunk carries one, else a pulse shape at the
  held pulse rate. A reading at a packet time is sent in that packet, so readings on a 1/3 s
  grid come back with their own times. Without a fresh reading the device is silent.
- :class:`VirtualMasimoRad8`: one ASCII 1 line per SpO2 reading, at the reading's time, with the
  pulse rate at that instant and the device clock in local time (``utc_offset_s``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt

from simulators.devices.serial_encode import encode_masimo_ascii1, encode_nonin_df2_packet
from simulators.devices.virtual_ble import Notification, ScenarioSource, VirtualPulseOximeter
from simulators.scenarios.run import Chunk

__all__ = [
    "MASIMO_PERFUSION_INDEX",
    "NONIN_PACKET_NS",
    "PLX_CONTINUOUS_UUID",
    "SERIAL_OXIMETERS",
    "LineBytes",
    "Notification",
    "VirtualMasimoRad8",
    "VirtualNoninXpod",
    "VirtualPulseOximeter",
    "VirtualSerialDevice",
]

PLX_CONTINUOUS_UUID = "00002a5f-0000-1000-8000-00805f9b34fb"

LineBytes = tuple[bytes, int]
"""``(bytes the device writes, time in Unix ns when the last of them leaves it)``."""

_NS = 1_000_000_000
_FRAME_HZ = 75
_FRAMES = 25
NONIN_PACKET_NS = _FRAMES * _NS / _FRAME_HZ
"""A Data Format #2 packet every 1/3 s (25 frames at 75 frames a second), in ns."""

MASIMO_PERFUSION_INDEX = 2.5
"""Perfusion index (%) a virtual Rad-8 prints: the scenario has no such metric; a typical adult value."""

_PLETH_BASE, _PLETH_GAIN = 40.0, 160.0  # scenario PPG (a.u., about -0.2..1.2) -> 8-bit pleth
_WAVE_MEMORY_NS = _NS  # PPG kept from the previous chunk for frames that straddle chunks
# frame i of a packet is (24 - i)/75 s before its last frame, rounded as the decoder dates it
_FRAME_OFFSETS_NS = tuple(-(((_FRAMES - 1 - i) * 2 * _NS + _FRAME_HZ) // (2 * _FRAME_HZ)) for i in range(_FRAMES))
_EMPTY_T = np.zeros(0, dtype=np.int64)
_EMPTY_V = np.zeros(0, dtype=np.float64)


class VirtualSerialDevice(Protocol):
    """A virtual serial device: scenario chunks in, the bytes it writes on its line out."""

    profile: str
    carries: tuple[str, ...]
    waveforms: tuple[str, ...]
    run: ScenarioSource | None

    def line_bytes(self, chunk: Chunk) -> list[LineBytes]:
        """What the device writes during ``chunk``, in order."""
        ...

    def advance(self, duration_s: float) -> list[LineBytes]:
        """Advance the scenario by ``duration_s`` seconds; return what the device wrote."""
        ...


def _series(numerics: Mapping[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
            *candidates: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The first candidate metric with readings in the chunk, sorted by time (stable)."""
    for metric in candidates:
        times, values = numerics.get(metric, (_EMPTY_T, _EMPTY_V))
        if len(times):
            order = np.argsort(times, kind="stable")
            return np.asarray(times, np.int64)[order], np.asarray(values, np.float64)[order]
    return _EMPTY_T, _EMPTY_V


def _whole(value: float | None, high: int) -> int | None:
    """A reading as the whole number a device displays, clipped to what its field holds."""
    return None if value is None or math.isnan(value) else int(min(high, max(0, round(value))))


def _pulse_shape(phase: float) -> float:
    """One plethysmogram beat over phase 0..1: a quick systolic upstroke, then an exponential run-off."""
    return math.sin(math.pi / 2 * phase / 0.15) if phase < 0.15 else math.exp(-(phase - 0.15) * 3.5)


class _HeldReading:
    """The newest reading of one metric at or before a moment, fresh for ``hold_ns``."""

    def __init__(self, hold_ns: int) -> None:
        self.hold_ns = hold_ns
        self.pending_t = _EMPTY_T
        self.pending_v = _EMPTY_V
        self.time_ns: int | None = None
        self.value = math.nan

    def add(self, times: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        if len(times):
            all_t = np.concatenate([self.pending_t, times])
            all_v = np.concatenate([self.pending_v, values])
            order = np.argsort(all_t, kind="stable")
            self.pending_t, self.pending_v = all_t[order], all_v[order]

    def at(self, time_ns: int) -> float | None:
        """The value held at ``time_ns`` (consuming readings up to it), or None when stale."""
        taken = int(np.searchsorted(self.pending_t, time_ns, side="right"))
        if taken:
            newest_t = int(self.pending_t[taken - 1])
            if self.time_ns is None or newest_t >= self.time_ns:  # a late, older reading changes nothing
                self.time_ns, self.value = newest_t, float(self.pending_v[taken - 1])
            self.pending_t, self.pending_v = self.pending_t[taken:], self.pending_v[taken:]
        if self.time_ns is None or time_ns - self.time_ns > self.hold_ns:
            return None
        return self.value


class VirtualNoninXpod:
    """A Nonin Xpod in Data Format #2 (see the module docstring); ``hold_s`` in seconds."""

    profile: str = "nonin.xpod"
    carries: tuple[str, ...] = ("spo2", "pulse_rate", "ppg")
    waveforms: tuple[str, ...] = ("ppg",)

    def __init__(self, run: ScenarioSource | None = None, *, hold_s: float = 5.0, utc_offset_s: int = 0) -> None:
        del utc_offset_s  # the Xpod has no clock
        self.run = run
        self.sent = 0
        self._origin_ns: int | None = None
        self._spo2 = _HeldReading(round(hold_s * _NS))
        self._pulse = _HeldReading(round(hold_s * _NS))
        self._wave_t = _EMPTY_V  # ns since the grid origin
        self._wave_v = _EMPTY_V
        self._phase = 0.0

    def packet_times(self, start_ns: int, end_ns: int) -> list[int]:
        """End times (Unix ns) of the packets the grid puts in ``[start_ns, end_ns)``."""
        origin = self._origin_ns if self._origin_ns is not None else start_ns
        k = max(1, -((origin - start_ns) * 3 // _NS))  # ceil((start - origin) / (1/3 s))
        times: list[int] = []
        while True:
            time_ns = origin + (k * _NS * 2 + 3) // 6  # k/3 s, rounded to the ns
            if time_ns >= end_ns:
                return times
            if time_ns >= start_ns:
                times.append(time_ns)
            k += 1

    def advance(self, duration_s: float) -> list[LineBytes]:
        """Advance the scenario by ``duration_s`` seconds; return the packets written."""
        if self.run is None:
            raise ValueError("this virtual device has no scenario run; pass chunks to line_bytes()")
        return self.line_bytes(self.run.advance(duration_s))

    def line_bytes(self, chunk: Chunk) -> list[LineBytes]:
        """The 125-byte packets the Xpod writes during ``chunk``, each with its last frame's time."""
        if self._origin_ns is None:
            self._origin_ns = chunk.start_ns
        self._spo2.add(*_series(chunk.numerics, "spo2"))
        self._pulse.add(*_series(chunk.numerics, "pulse_rate", "heart_rate"))
        with_wave = self._remember_wave(chunk)
        out: list[LineBytes] = []
        for time_ns in self.packet_times(chunk.start_ns, chunk.end_ns):
            spo2, pulse = self._spo2.at(time_ns), self._pulse.at(time_ns)
            if spo2 is None and pulse is None:
                continue  # switched off or the sensor is off the finger: a silent line
            spo2_byte, pulse_value = _whole(spo2, 100), _whole(pulse, 510)
            packet = encode_nonin_df2_packet(
                self._pleth(time_ns, pulse, with_wave), pulse_rate=pulse_value, spo2=spo2_byte, spo2_fast=spo2_byte,
                spo2_beat_to_beat=spo2_byte, pulse_rate_8_beat=pulse_value, spo2_8_beat=spo2_byte)
            out.append((packet, time_ns))
        self.sent += len(out)
        return out

    def _remember_wave(self, chunk: Chunk) -> bool:
        """Keep the chunk's PPG (and the end of the previous one); False when the chunk has none."""
        wave = chunk.waveforms.get("ppg")
        if wave is None or self._origin_ns is None or not len(wave[2]):
            return False
        first_ns, fs, values = wave
        times = (first_ns - self._origin_ns) + np.arange(len(values), dtype=np.float64) * (_NS / fs)
        keep = self._wave_t >= (chunk.start_ns - self._origin_ns) - _WAVE_MEMORY_NS
        self._wave_t = np.concatenate([self._wave_t[keep], times])
        self._wave_v = np.concatenate([self._wave_v[keep], np.asarray(values, np.float64)])
        return True

    def _pleth(self, packet_ns: int, pulse: float | None, with_wave: bool) -> list[int]:
        """The packet's 25 pleth bytes: the scenario PPG at the frame times, or a synthetic beat."""
        assert self._origin_ns is not None
        if with_wave:
            at = np.asarray([packet_ns - self._origin_ns + o for o in _FRAME_OFFSETS_NS], dtype=np.float64)
            raw = _PLETH_BASE + _PLETH_GAIN * np.interp(at, self._wave_t, self._wave_v)
            return [int(v) for v in np.clip(np.rint(raw), 0, 255)]
        rate = pulse if pulse is not None and pulse > 0 else 72.0
        out: list[int] = []
        for _ in range(_FRAMES):
            self._phase = (self._phase + rate / 60.0 / _FRAME_HZ) % 1.0
            out.append(max(0, min(255, round(110 + 110 * _pulse_shape(self._phase)))))
        return out


class VirtualMasimoRad8:
    """A Masimo Rad-8 printing ASCII 1 lines (see the module docstring); ``utc_offset_s`` sets its clock."""

    profile: str = "masimo.rad8"
    carries: tuple[str, ...] = ("spo2", "pulse_rate")
    waveforms: tuple[str, ...] = ()

    def __init__(self, run: ScenarioSource | None = None, *, utc_offset_s: int = 0,
                 perfusion_index: float = MASIMO_PERFUSION_INDEX, serial_number: str = "0000012345") -> None:
        self.run = run
        self.utc_offset_s = utc_offset_s
        self.perfusion_index = perfusion_index
        self.serial_number = serial_number
        self.sent = 0
        self._last_pulse: float | None = None

    def advance(self, duration_s: float) -> list[LineBytes]:
        """Advance the scenario by ``duration_s`` seconds; return the lines written."""
        if self.run is None:
            raise ValueError("this virtual device has no scenario run; pass chunks to line_bytes()")
        return self.line_bytes(self.run.advance(duration_s))

    def line_bytes(self, chunk: Chunk) -> list[LineBytes]:
        """One ASCII 1 line (CR LF ended) per SpO2 reading, in delivery order."""
        times, spo2 = chunk.numerics.get("spo2", (_EMPTY_T, _EMPTY_V))
        if not len(times):
            return []
        pulse_t, pulse_v = _series(chunk.numerics, "pulse_rate", "heart_rate")
        if len(pulse_t):
            pulse: list[float | None] = np.interp(np.asarray(times, np.float64), pulse_t.astype(np.float64),
                                                  pulse_v).tolist()
            self._last_pulse = float(pulse_v[-1])
        else:
            pulse = [self._last_pulse] * len(times)
        out: list[LineBytes] = []
        for time_ns, saturation, rate in zip(np.asarray(times).tolist(), np.asarray(spo2).tolist(), pulse,
                                             strict=True):
            clock = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=(time_ns + _NS // 2) // _NS + self.utc_offset_s)
            line = encode_masimo_ascii1(clock, spo2=_whole(saturation, 100), pulse_rate=_whole(rate, 999),
                                        perfusion_index=self.perfusion_index, serial_number=self.serial_number)
            out.append((line, int(time_ns)))
        self.sent += len(out)
        return out


SERIAL_OXIMETERS: dict[str, Callable[..., VirtualSerialDevice]] = {
    VirtualNoninXpod.profile: VirtualNoninXpod,
    VirtualMasimoRad8.profile: VirtualMasimoRad8,
}
"""Serial profile id -> virtual device class, called as ``cls(run, utc_offset_s=...)``."""
