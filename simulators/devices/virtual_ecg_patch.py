"""A virtual ECG patch: the scenario's ECG as the notifications a wearable patch streams.

The patch samples one lead at the scenario's ECG rate (250 Hz in the library), rounds each sample
to a whole microvolt and sends a notification of :data:`SAMPLES_PER_NOTIFICATION` samples in the
:mod:`device_profiles.ecg_patch` format as soon as its last sample is taken; samples that do not
fill a notification yet wait for the next chunk. The frame counter goes up by one per notification.

Pure: the caller advances the scenario run (:meth:`VirtualEcgPatch.advance`) or passes chunks
(:meth:`VirtualEcgPatch.notifications`); nothing here reads a clock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device_profiles.ecg_patch import FRAME_TYPE_ECG, MAX_RATE_HZ, MAX_SAMPLES, EcgPatchFrame
from device_profiles.profile import normalize_uuid
from simulators.devices.virtual_ble import Notification, ScenarioSource
from simulators.scenarios.run import Chunk

__all__ = [
    "ECG_PATCH_CHARACTERISTIC",
    "ECG_PATCH_PROFILE",
    "SAMPLES_PER_NOTIFICATION",
    "VirtualEcgPatch",
    "encode_ecg_patch_frame",
]

ECG_PATCH_PROFILE = "generic.ecg_patch"
ECG_PATCH_CHARACTERISTIC = normalize_uuid("5a1e0002-7c1b-4a3e-9d2f-0e6b5c4a3b21")
"""The stream characteristic of ``generic.ecg_patch``."""

SAMPLES_PER_NOTIFICATION = 25
"""Samples in one notification: ten notifications a second at 250 Hz."""

_NS = 1_000_000_000
_INT24 = 1 << 23


def encode_ecg_patch_frame(frame: EcgPatchFrame) -> bytes:
    """The notification bytes of ``frame``; ``ValueError`` when it has no encoding."""
    if not 0 <= frame.counter <= 0xFFFF or not 1 <= frame.sample_rate_hz <= MAX_RATE_HZ:
        raise ValueError(f"counter must be a uint16 and the sample rate 1..{MAX_RATE_HZ} Hz")
    if not 1 <= len(frame.samples_uv) <= MAX_SAMPLES or not 0 <= frame.status <= 0xFF:
        raise ValueError(f"a frame holds 1..{MAX_SAMPLES} samples and a status byte")
    if any(not -_INT24 <= value < _INT24 for value in frame.samples_uv):
        raise ValueError("samples are sint24 microvolts")
    header = (bytes((FRAME_TYPE_ECG,)) + frame.counter.to_bytes(2, "little")
              + frame.sample_rate_hz.to_bytes(2, "little") + bytes((frame.status,)))
    return header + b"".join(value.to_bytes(3, "little", signed=True) for value in frame.samples_uv)


class VirtualEcgPatch:
    """An ECG patch streaming the scenario's ``ecg`` waveform (the run must render waveforms).

    State carried across chunks: samples not sent yet (with the time of the first), the frame
    counter and the rate. :attr:`sent` counts notifications.
    """

    def __init__(self, run: ScenarioSource | None = None, *,
                 samples_per_notification: int = SAMPLES_PER_NOTIFICATION) -> None:
        if not 1 <= samples_per_notification <= MAX_SAMPLES:
            raise ValueError(f"samples_per_notification must be 1..{MAX_SAMPLES}")
        self.run = run
        self.samples_per_notification = samples_per_notification
        self.sent = 0
        self._counter = 0
        self._pending = np.zeros(0, dtype=np.int64)
        self._pending_first_ns: int | None = None
        self._rate_hz: int | None = None

    @property
    def characteristic(self) -> str:
        """The UUID (128-bit, lower case) of the characteristic this device notifies."""
        return ECG_PATCH_CHARACTERISTIC

    def advance(self, duration_s: float) -> list[Notification]:
        """Advance the scenario by ``duration_s`` seconds; return the notifications it produced."""
        if self.run is None:
            raise ValueError("this virtual patch has no scenario run; pass chunks to notifications()")
        return self.notifications(self.run.advance(duration_s))

    def notifications(self, chunk: Chunk) -> list[Notification]:
        """The notifications for one scenario chunk (none when it has no ECG)."""
        wave = chunk.waveforms.get("ecg")
        if wave is None or not len(wave[2]):
            return []
        first_ns, rate, values = wave
        rate_hz = round(rate)
        if self._rate_hz is not None and rate_hz != self._rate_hz:
            self._pending, self._pending_first_ns = np.zeros(0, dtype=np.int64), None  # a new stream
        self._rate_hz = rate_hz
        microvolts = np.clip(np.rint(np.asarray(values, np.float64) * 1000.0), -_INT24, _INT24 - 1).astype(np.int64)
        if self._pending_first_ns is None or not len(self._pending):
            self._pending_first_ns = int(first_ns)
        self._pending = np.concatenate([self._pending, microvolts])
        return self._drain()

    def _drain(self) -> list[Notification]:
        assert self._rate_hz is not None and self._pending_first_ns is not None
        out: list[Notification] = []
        size, rate = self.samples_per_notification, self._rate_hz
        whole = len(self._pending) // size * size
        for start in range(0, whole, size):
            block: npt.NDArray[np.int64] = self._pending[start:start + size]
            last_ns = self._pending_first_ns + ((start + size - 1) * _NS + rate // 2) // rate
            frame = EcgPatchFrame(self._counter, rate, tuple(int(v) for v in block))
            out.append((ECG_PATCH_CHARACTERISTIC, encode_ecg_patch_frame(frame), last_ns))
            self._counter = (self._counter + 1) & 0xFFFF
        if whole:
            self._pending_first_ns += (whole * _NS + rate // 2) // rate
            self._pending = self._pending[whole:]
        self.sent += len(out)
        return out
