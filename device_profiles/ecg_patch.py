"""The ECG patch stream: a vendor-style Bluetooth notification carrying a block of ECG samples.

There is no Bluetooth SIG service for ECG; wearable patches stream it in a format of their own on
a vendor characteristic, typically a small header and a block of signed 24-bit microvolt samples.
This is such a format (the reference format of ``generic.ecg_patch``), little-endian::

    byte 0     frame type, 0x01 = ECG samples (others are not defined)
    bytes 1-2  frame counter (uint16, +1 per notification, wraps): a gap shows lost notifications
    bytes 3-4  sample rate (uint16, Hz, 1..2000)
    byte 5     status: bit 0 electrodes off the skin (lead off), bit 1 battery low, bits 2-7 reserved
    bytes 6-   1..79 samples, each a sint24 in microvolts (79 fill a 244-byte notification)

The notification is sent when its last sample is taken, so the decoder stamps the last sample
with the arrival time and the earlier ones one sample period apart before it (as the Nonin
serial decoder does with its frames). Samples taken with the electrodes off are marked
``DEVICE_QUESTIONABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.errors import DecodeError
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.samples import Quality, Sample

__all__ = [
    "FRAME_TYPE_ECG",
    "HEADER_LENGTH",
    "MAX_RATE_HZ",
    "MAX_SAMPLES",
    "EcgPatchFrame",
    "decode_ecg_patch_frame",
    "ecg_patch_decoder",
]

FRAME_TYPE_ECG = 0x01
HEADER_LENGTH = 6
MAX_SAMPLES = 79
MAX_RATE_HZ = 2000
_SAMPLE_BYTES = 3
_LEAD_OFF = 0x01
_BATTERY_LOW = 0x02
_NAME = "ECG patch frame"


@dataclass(frozen=True, slots=True)
class EcgPatchFrame:
    """One notification: frame counter, sample rate (Hz), status byte and samples (µV)."""

    counter: int
    sample_rate_hz: int
    samples_uv: tuple[int, ...]
    status: int = 0

    @property
    def lead_off(self) -> bool:
        """The electrodes were off the skin."""
        return bool(self.status & _LEAD_OFF)

    @property
    def battery_low(self) -> bool:
        """The patch's battery is low."""
        return bool(self.status & _BATTERY_LOW)


def decode_ecg_patch_frame(payload: bytes) -> EcgPatchFrame:
    """Decode one notification; :class:`DecodeError` names what is wrong."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise DecodeError(f"{_NAME}: payload must be bytes, not {type(payload).__name__}")
    data = bytes(payload)
    if len(data) < HEADER_LENGTH + _SAMPLE_BYTES:
        raise DecodeError(f"{_NAME}: {len(data)} bytes is too short for the {HEADER_LENGTH}-byte header "
                          f"and one sample")
    if data[0] != FRAME_TYPE_ECG:
        raise DecodeError(f"{_NAME}: frame type 0x{data[0]:02X} is not 0x{FRAME_TYPE_ECG:02X} (ECG samples)")
    rate = int.from_bytes(data[3:5], "little")
    if not 1 <= rate <= MAX_RATE_HZ:
        raise DecodeError(f"{_NAME}: sample rate {rate} Hz is outside 1..{MAX_RATE_HZ} (byte offset 3)")
    body = len(data) - HEADER_LENGTH
    if body % _SAMPLE_BYTES:
        raise DecodeError(f"{_NAME}: {body} sample bytes are not a whole number of 3-byte samples")
    count = body // _SAMPLE_BYTES
    if count > MAX_SAMPLES:
        raise DecodeError(f"{_NAME}: {count} samples; at most {MAX_SAMPLES} fit a notification")
    samples = tuple(
        int.from_bytes(data[offset:offset + _SAMPLE_BYTES], "little", signed=True)
        for offset in range(HEADER_LENGTH, len(data), _SAMPLE_BYTES)
    )
    return EcgPatchFrame(int.from_bytes(data[1:3], "little"), rate, samples, data[5])


def ecg_patch_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``ble.ecg_patch``: ``ecg`` samples in mV, the last one at ``context.received_ns``.

    ``status`` says whether the leads are off and the battery low.
    """
    frame = decode_ecg_patch_frame(payload)
    count = len(frame.samples_uv)
    quality = int(Quality.DEVICE_QUESTIONABLE) if frame.lead_off else 0
    last = context.received_ns
    rate = frame.sample_rate_hz
    samples = tuple(
        # Exact integer maths: the stamps are evenly spaced to the nanosecond, so the block stays regular.
        Sample("ecg", last - ((count - 1 - index) * 1_000_000_000 + rate // 2) // rate, value / 1000.0, quality)
        for index, value in enumerate(frame.samples_uv)
    )
    notes = ("leads off: samples marked questionable",) if frame.lead_off else ()
    return DecodeResult(samples, {"lead_off": frame.lead_off, "battery_low": frame.battery_low}, notes)
