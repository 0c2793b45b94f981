"""Nonin serial "Data Format #2" (OEM III module, Xpod, WristOx2 SPP): one 25-frame packet per call.

Source: Nonin Medical, "OEM III Module Specification and Technical Information" and "Xpod
Specification and Technical Information", section Serial Data Format #2. 9600 baud, 8N1; 75 frames
a second, 25 frames a packet (3 packets a second). Each 5-byte frame is::

    0x01 | STATUS | PLETH | DATA | CHK = (sum of the four bytes before) mod 256

STATUS: bit 7 always 1, bit 6 SNSD (sensor disconnected), bit 5 ARTF (artifact), bit 4 OOT (out of
track), bit 3 SNSA (sensor alarm), bits 2..1 perfusion (01 green/high, 11 yellow/medium, 10
red/low), bit 0 SYNC (set on the packet's first frame). PLETH is the 8-bit plethysmogram sample.
DATA depends on the frame's place in the packet: frame 1 HR MSB (bits 1..0 = HR bits 8..7), frame 2
HR LSB (bits 6..0), frame 3 SpO2, frame 4 firmware revision, frame 8 STAT2, frame 10 SpO2 fast,
frame 11 SpO2 beat-to-beat, frames 14/15 extended (8-beat) HR MSB/LSB, frame 16 extended SpO2.
HR and SpO2 are 4-beat averages; HR 511 and SpO2 127 mean "no data".
"""

from __future__ import annotations

from typing import Any

from device_profiles.errors import DecodeError
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.samples import Quality, Sample

__all__ = [
    "FRAME_LENGTH",
    "FRAMES_PER_PACKET",
    "FRAME_RATE_HZ",
    "HR_MISSING",
    "PACKET_LENGTH",
    "SPO2_MISSING",
    "decode_nonin_df2_packet",
]

FRAME_LENGTH = 5
FRAMES_PER_PACKET = 25
PACKET_LENGTH = FRAME_LENGTH * FRAMES_PER_PACKET
FRAME_RATE_HZ = 75
HR_MISSING = 511
SPO2_MISSING = 127

_SNSD, _ARTF, _OOT, _SNSA, _SYNC = 0x40, 0x20, 0x10, 0x08, 0x01
_PERFUSION = {0b00: "none", 0b01: "green", 0b11: "yellow", 0b10: "red"}


def _frame_offset_ns(index: int) -> int:
    """Time of frame ``index`` relative to the packet's last frame (ns, <= 0), rounded."""
    frames_before_last = FRAMES_PER_PACKET - 1 - index
    return -((frames_before_last * 2 * 10**9 + FRAME_RATE_HZ) // (2 * FRAME_RATE_HZ))


def _check_frames(payload: bytes) -> None:
    if len(payload) != PACKET_LENGTH:
        raise DecodeError(f"a Data Format #2 packet is {PACKET_LENGTH} bytes, got {len(payload)}")
    for index in range(FRAMES_PER_PACKET):
        frame = payload[index * FRAME_LENGTH : (index + 1) * FRAME_LENGTH]
        if frame[0] != 0x01:
            raise DecodeError(f"frame {index + 1}: start byte is 0x{frame[0]:02X}, not 0x01")
        if not frame[1] & 0x80:
            raise DecodeError(f"frame {index + 1}: status bit 7 is clear")
        if sum(frame[:4]) & 0xFF != frame[4]:
            raise DecodeError(f"frame {index + 1}: checksum 0x{frame[4]:02X} != 0x{sum(frame[:4]) & 0xFF:02X}")
        if bool(frame[1] & _SYNC) != (index == 0):
            raise DecodeError(f"frame {index + 1}: SYNC bit {'clear' if index == 0 else 'set'}")


def decode_nonin_df2_packet(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Decode one 125-byte packet: 25 ``ppg`` samples (raw 0..255 at 75 Hz), ``pulse_rate`` (/min), ``spo2`` (%).

    The packet's last frame is taken to arrive at ``context.received_ns``; earlier frames are
    1/75 s apart before it. Status bits become :class:`~vitals.samples.Quality` flags: artifact
    marks that frame's plethysmogram sample, out-of-track or sensor alarm anywhere in the packet
    marks SpO2 and pulse rate questionable, red perfusion marks them low signal quality.
    """
    _check_frames(payload)
    status_bytes = payload[1::FRAME_LENGTH]
    pleth = payload[2::FRAME_LENGTH]
    data = payload[3::FRAME_LENGTH]
    received = context.received_ns
    samples: list[Sample] = []
    for index in range(FRAMES_PER_PACKET):
        quality = Quality.ARTIFACT if status_bytes[index] & _ARTF else Quality.OK
        samples.append(Sample("ppg", received + _frame_offset_ns(index), float(pleth[index]), int(quality)))

    any_status = 0
    for byte in status_bytes:
        any_status |= byte
    perfusion = _PERFUSION[(status_bytes[-1] >> 1) & 0b11]
    numeric_quality = Quality.OK
    if any_status & (_OOT | _SNSA):
        numeric_quality |= Quality.DEVICE_QUESTIONABLE
    if perfusion == "red":
        numeric_quality |= Quality.LOW_SIGNAL_QUALITY

    notes: list[str] = []
    pulse_rate = ((data[0] & 0x03) << 7) | (data[1] & 0x7F)
    spo2 = data[2] & 0x7F
    if any_status & _SNSD:
        notes.append("sensor disconnected")
    if pulse_rate == HR_MISSING:
        notes.append("pulse_rate: no data (511)")
    else:
        samples.append(Sample("pulse_rate", received, float(pulse_rate), int(numeric_quality)))
    if spo2 == SPO2_MISSING:
        notes.append("spo2: no data (127)")
    else:
        samples.append(Sample("spo2", received, float(spo2), int(numeric_quality)))

    extended_hr = ((data[13] & 0x03) << 7) | (data[14] & 0x7F)
    status: dict[str, Any] = {
        "sensor_disconnected": bool(any_status & _SNSD),
        "artifact": bool(any_status & _ARTF),
        "out_of_track": bool(any_status & _OOT),
        "sensor_alarm": bool(any_status & _SNSA),
        "perfusion": perfusion,
        "firmware_revision": data[3],
        "stat2": data[7],
        "spo2_fast": None if data[9] & 0x7F == SPO2_MISSING else data[9] & 0x7F,
        "spo2_beat_to_beat": None if data[10] & 0x7F == SPO2_MISSING else data[10] & 0x7F,
        "pulse_rate_8_beat": None if extended_hr == HR_MISSING else extended_hr,
        "spo2_8_beat": None if data[15] & 0x7F == SPO2_MISSING else data[15] & 0x7F,
    }
    return DecodeResult(tuple(samples), status, tuple(notes))
