"""Encoders of the serial output formats VitalBridge decodes: the exact bytes a real device sends.

Used by virtual serial devices (served on a pseudo-terminal) and by tests, so the decoders and the
simulators are checked against each other. Formats: Nonin "Data Format #2" packets
(:mod:`device_profiles.serial.nonin`) and Masimo "ASCII 1" lines (:mod:`device_profiles.serial.masimo`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from device_profiles.serial.masimo import EXCEPTION_BITS
from device_profiles.serial.nonin import FRAMES_PER_PACKET, HR_MISSING, SPO2_MISSING

__all__ = ["NoninStatus", "encode_masimo_ascii1", "encode_nonin_df2_packet"]

_PERFUSION_BITS = {"none": 0b00, "green": 0b01, "yellow": 0b11, "red": 0b10}


@dataclass(frozen=True, slots=True)
class NoninStatus:
    """The STATUS byte flags of one Nonin frame (bit 7 and SYNC are set by the encoder)."""

    sensor_disconnected: bool = False
    artifact: bool = False
    out_of_track: bool = False
    sensor_alarm: bool = False
    perfusion: str = "green"

    def byte(self, first_frame: bool) -> int:
        """The STATUS byte for a frame, with SYNC set on the packet's first frame."""
        value = 0x80 | (_PERFUSION_BITS[self.perfusion] << 1)
        value |= 0x40 if self.sensor_disconnected else 0
        value |= 0x20 if self.artifact else 0
        value |= 0x10 if self.out_of_track else 0
        value |= 0x08 if self.sensor_alarm else 0
        return value | (0x01 if first_frame else 0)


def _hr_bytes(rate: int | None) -> tuple[int, int]:
    value = HR_MISSING if rate is None else rate
    if not 0 <= value <= HR_MISSING:
        raise ValueError(f"pulse rate {value} does not fit 9 bits")
    return (value >> 7) & 0x03, value & 0x7F


def _spo2_byte(spo2: int | None) -> int:
    value = SPO2_MISSING if spo2 is None else spo2
    if not 0 <= value <= SPO2_MISSING:
        raise ValueError(f"SpO2 {value} does not fit 7 bits")
    return value


def encode_nonin_df2_packet(
    pleth: Sequence[int],
    *,
    pulse_rate: int | None,
    spo2: int | None,
    status: NoninStatus | Sequence[NoninStatus] = NoninStatus(),
    firmware_revision: int = 0x2C,
    stat2: int = 0,
    spo2_fast: int | None = None,
    spo2_beat_to_beat: int | None = None,
    pulse_rate_8_beat: int | None = None,
    spo2_8_beat: int | None = None,
) -> bytes:
    """One 125-byte Nonin Data Format #2 packet: 25 frames of ``0x01 STATUS PLETH DATA CHK``.

    ``pleth`` holds the 25 plethysmogram samples (0..255); ``pulse_rate`` (/min, 4-beat) and
    ``spo2`` (%) may be None for "no data" (511 and 127 on the wire). ``status`` applies to every
    frame or is given per frame. Values a device would not send raise ``ValueError``.
    """
    if len(pleth) != FRAMES_PER_PACKET:
        raise ValueError(f"a packet carries {FRAMES_PER_PACKET} pleth samples, got {len(pleth)}")
    statuses = [status] * FRAMES_PER_PACKET if isinstance(status, NoninStatus) else list(status)
    if len(statuses) != FRAMES_PER_PACKET:
        raise ValueError(f"give one status or {FRAMES_PER_PACKET}")
    data = [0] * FRAMES_PER_PACKET
    data[0], data[1] = _hr_bytes(pulse_rate)
    data[2] = _spo2_byte(spo2)
    data[3] = firmware_revision & 0xFF
    data[7] = stat2 & 0xFF
    data[8] = data[2]  # SpO2-D: the displayed value, here the same as the 4-beat average
    data[9] = _spo2_byte(spo2_fast)
    data[10] = _spo2_byte(spo2_beat_to_beat)
    data[13], data[14] = _hr_bytes(pulse_rate_8_beat)
    data[15] = _spo2_byte(spo2_8_beat)
    data[16] = _spo2_byte(spo2_8_beat)  # E-SpO2-D
    data[19], data[20] = data[0], data[1]  # HR-D
    data[21], data[22] = data[13], data[14]  # E-HR-D
    out = bytearray()
    for index in range(FRAMES_PER_PACKET):
        sample = pleth[index]
        if not 0 <= sample <= 0xFF:
            raise ValueError(f"pleth sample {sample} does not fit a byte")
        frame = [0x01, statuses[index].byte(index == 0), sample, data[index]]
        out += bytes([*frame, sum(frame) & 0xFF])
    return bytes(out)


def _field(value: float | None, width: int, decimals: int, *, percent: bool) -> str:
    if value is None:
        text = "-" * width if decimals == 0 else "-" * (width - decimals - 1) + "." + "-" * decimals
    else:
        text = f"{value:0{width}.{decimals}f}"
        if len(text) != width:
            raise ValueError(f"{value} does not fit {width} characters")
    return text + ("%" if percent else "")


def encode_masimo_ascii1(
    device_time: dt.datetime,
    *,
    spo2: int | None,
    pulse_rate: int | None,
    perfusion_index: float | None = None,
    serial_number: str = "0000012345",
    alarm: int = 0,
    exceptions: int | Iterable[str] = 0x800,
    line_end: bytes = b"\r\n",
) -> bytes:
    """One Masimo ASCII 1 line (with its line end) as a Rad-8 prints it once a second.

    ``spo2`` (%), ``pulse_rate`` (/min) and ``perfusion_index`` (%) may be None ("--" on the
    wire). ``exceptions`` is the EXC bit set or the names of its bits (see ``EXCEPTION_BITS``).
    """
    if not isinstance(exceptions, int):
        by_name = {name: bit for bit, name in EXCEPTION_BITS.items()}
        exceptions = sum(by_name[name] for name in set(exceptions))
    text = (
        f"{device_time:%m/%d/%y %H:%M:%S} SN={serial_number} "
        f"SPO2={_field(spo2, 3, 0, percent=True)} BPM={_field(pulse_rate, 3, 0, percent=False)} "
        f"PI={_field(perfusion_index, 5, 2, percent=True)} SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- "
        f"ALARM={alarm:04X} EXC={exceptions:06X}"
    )
    return text.encode("ascii") + line_end
