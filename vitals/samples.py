"""The data types that travel: a single :class:`Sample`, a :class:`Stream` of one metric, a :class:`Batch`.

Times are integer nanoseconds since the Unix epoch (UTC). Values are in the catalogue unit of their
metric. Every value carries a quality bit set (:class:`Quality`); 0 means a clean reading.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "Batch",
    "IDENTIFIER_PATTERN",
    "Quality",
    "Sample",
    "Stream",
    "is_identifier",
    "regular_times",
]

IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
"""Gateway, patient, device and profile ids: safe in MQTT topics, InfluxDB tags and URLs."""


def is_identifier(text: object) -> bool:
    """Return True when ``text`` is a valid VitalBridge identifier (1-64 safe characters)."""
    return isinstance(text, str) and IDENTIFIER_PATTERN.fullmatch(text) is not None


class Quality(enum.IntFlag):
    """Why a value deserves caution. Several flags may be set; ``Quality(0)`` is a clean value."""

    OK = 0
    RATE_OF_CHANGE = 1  # jumped faster than the metric can physically change
    ARTIFACT = 2  # a filter (spike, motion) marked it
    LOW_SIGNAL_QUALITY = 4  # the window's signal quality index was poor
    DEVICE_QUESTIONABLE = 8  # the device itself reported a questionable measurement
    INTERPOLATED = 16  # not measured, filled in
    HEARTBEAT = 32  # repeated unchanged value sent so silence means "no device"
    LATE = 64  # arrived after newer readings of the same stream
    GAP = 128  # the first waveform sample after a gap (a device reconnecting): the samples before it are missing


class Sample(NamedTuple):
    """One reading of one metric: ``value`` in the catalogue unit at ``time_ns``.

    A named tuple, not a dataclass: the cloud makes hundreds of thousands a second, and a tuple is
    made several times faster while staying immutable.
    """

    metric: str
    time_ns: int
    value: float
    quality: int = 0


def _as_int64(values: Any) -> npt.NDArray[np.int64]:
    array = np.asarray(values, dtype=np.int64)
    array.setflags(write=False)
    return array


def _as_float64(values: Any) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    array.setflags(write=False)
    return array


def _as_uint8(values: Any) -> npt.NDArray[np.uint8]:
    array = np.asarray(values, dtype=np.uint8)
    array.setflags(write=False)
    return array


def regular_times(start_ns: int, rate_hz: float, count: int) -> npt.NDArray[np.int64]:
    """Return the sample times of a regular stream: ``start_ns + round(i * 1e9 / rate_hz)``."""
    offsets = np.rint(np.arange(count, dtype=np.float64) * (1.0e9 / rate_hz)).astype(np.int64)
    return offsets + np.int64(start_ns)


@dataclass(frozen=True, eq=False)
class Stream:
    """Values of one catalogue metric, with their times and quality, from one device.

    A regular stream (waveforms) has ``rate_hz`` set and times that follow from its first time;
    the wire then carries only the start and the rate. ``scale`` is set when the values are exact
    integer multiples of it (device counts); the wire then carries the integers losslessly.
    """

    metric: str
    unit: str
    times_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    quality: npt.NDArray[np.uint8]
    rate_hz: float | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "times_ns", _as_int64(self.times_ns))
        object.__setattr__(self, "values", _as_float64(self.values))
        object.__setattr__(self, "quality", _as_uint8(self.quality))
        if not (len(self.times_ns) == len(self.values) == len(self.quality)):
            raise ValueError("times_ns, values and quality must have the same length")

    @classmethod
    def regular(
        cls,
        metric: str,
        unit: str,
        start_ns: int,
        rate_hz: float,
        values: Any,
        quality: Any = None,
        scale: float | None = None,
    ) -> Stream:
        """Build a regularly sampled stream starting at ``start_ns`` with ``rate_hz`` samples/s."""
        vals = _as_float64(values)
        qual = np.zeros(len(vals), dtype=np.uint8) if quality is None else quality
        return cls(metric, unit, regular_times(start_ns, rate_hz, len(vals)), vals, qual,
                   rate_hz=float(rate_hz), scale=scale)

    @classmethod
    def from_samples(cls, metric: str, unit: str, samples: list[Sample]) -> Stream:
        """Build an irregular stream from samples of one metric (in time order)."""
        return cls(
            metric,
            unit,
            np.array([s.time_ns for s in samples], dtype=np.int64),
            np.array([s.value for s in samples], dtype=np.float64),
            np.array([s.quality for s in samples], dtype=np.uint8),
        )

    def __len__(self) -> int:
        return len(self.values)

    def samples(self) -> list[Sample]:
        """Return the stream as a list of :class:`Sample`."""
        metric = self.metric
        return [
            Sample(metric, t, v, q)
            for t, v, q in zip(self.times_ns.tolist(), self.values.tolist(), self.quality.tolist(), strict=True)
        ]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stream):
            return NotImplemented
        return (
            self.metric == other.metric
            and self.unit == other.unit
            and self.rate_hz == other.rate_hz
            and self.scale == other.scale
            and np.array_equal(self.times_ns, other.times_ns)
            and np.array_equal(self.values, other.values)
            and np.array_equal(self.quality, other.quality)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Stream(metric={self.metric!r}, unit={self.unit!r}, n={len(self)}, "
            f"rate_hz={self.rate_hz!r}, scale={self.scale!r})"
        )


@dataclass(frozen=True)
class Batch:
    """What one gateway sends in one message: streams from one device of one patient.

    ``(gateway, epoch, seq)`` identifies the batch. ``epoch`` is a random id made with the gateway's
    spool (a reinstalled gateway gets a new one); ``seq`` grows by one per batch within the epoch
    and survives restarts (the spool keeps both), so the cloud can drop replays. An empty epoch is
    what gateways from before epochs send.
    """

    gateway: str
    seq: int
    patient: str
    device: str
    profile: str
    streams: tuple[Stream, ...] = field(default_factory=tuple)
    epoch: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", tuple(self.streams))

    @property
    def sample_count(self) -> int:
        """Number of values across all streams."""
        return sum(len(stream) for stream in self.streams)
