"""Scenario chunks as wire batches: what ``vitalbridge sim run --mode direct`` publishes.

Pure: a :class:`~simulators.scenarios.Chunk` goes in, :class:`~vitals.samples.Batch` es come out,
one per device per chunk (more when a device produced more than ``max_values`` values). Irregular
numerics are sorted by time and repeated timestamps dropped, because the wire requires strictly
increasing times; waveforms travel as regular streams with a ``scale``, so the lossless integer
("dz") encoding carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.scenarios import Chunk, Scenario
from vitals.catalogue import CATALOGUE
from vitals.samples import Batch, Stream

__all__ = [
    "DEFAULT_MAX_VALUES",
    "WAVEFORM_SCALES",
    "ScenarioBatcher",
    "numeric_stream",
    "split_stream",
    "waveform_stream",
]

WAVEFORM_SCALES: dict[str, float] = {
    "ecg": 0.001,  # mV: 1 uV steps, finer than an ambulatory ECG front end resolves
    "ppg": 0.001,  # a.u.: the simulated pulse is about 1 a.u. high, so 1/1000 keeps its shape
}
"""Quantisation step per waveform metric (catalogue unit) for the lossless integer encoding."""

DEFAULT_MAX_VALUES = 50_000
"""Values per batch at most: keeps a batch far below the wire's 1 MiB payload limit."""


def numeric_stream(metric: str, times_ns: npt.ArrayLike, values: npt.ArrayLike) -> Stream | None:
    """An irregular stream of ``metric`` sorted by time, keeping the first reading of each instant.

    ``times_ns``: ns since the Unix epoch in delivery order (late readings out of order, duplicates
    repeated); ``values`` in the catalogue unit. Returns ``None`` when there is nothing to send.
    """
    times = np.asarray(times_ns, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if len(times) == 0:
        return None
    order = np.argsort(times, kind="stable")
    times, vals = times[order], vals[order]
    first = np.ones(len(times), dtype=bool)
    first[1:] = times[1:] != times[:-1]
    times, vals = times[first], vals[first]
    return Stream(metric, CATALOGUE[metric].unit, times, vals, np.zeros(len(times), dtype=np.uint8))


def waveform_stream(metric: str, start_ns: int, rate_hz: float, values: npt.ArrayLike,
                    scale: float | None = None) -> Stream | None:
    """A regular stream of ``metric`` from ``start_ns`` at ``rate_hz`` Hz, quantised to ``scale``.

    ``scale`` (catalogue unit) defaults to :data:`WAVEFORM_SCALES` or the catalogue resolution;
    values are rounded to multiples of it so the wire carries them losslessly as integers.
    Returns ``None`` for an empty block.
    """
    vals = np.asarray(values, dtype=np.float64)
    if len(vals) == 0:
        return None
    step = scale if scale is not None else WAVEFORM_SCALES.get(metric, CATALOGUE[metric].resolution)
    quantised = np.rint(vals / step) * step
    return Stream.regular(metric, CATALOGUE[metric].unit, int(start_ns), rate_hz, quantised, scale=step)


def split_stream(stream: Stream, max_values: int) -> list[Stream]:
    """``stream`` cut into consecutive pieces of at most ``max_values`` values (one piece if it fits)."""
    if max_values <= 0:
        raise ValueError("max_values must be positive")
    if len(stream) <= max_values:
        return [stream]
    pieces: list[Stream] = []
    for lo in range(0, len(stream), max_values):
        hi = min(lo + max_values, len(stream))
        if stream.rate_hz is not None:
            pieces.append(Stream.regular(stream.metric, stream.unit, int(stream.times_ns[lo]), stream.rate_hz,
                                         stream.values[lo:hi], stream.quality[lo:hi], scale=stream.scale))
        else:
            pieces.append(Stream(stream.metric, stream.unit, stream.times_ns[lo:hi], stream.values[lo:hi],
                                 stream.quality[lo:hi], scale=stream.scale))
    return pieces


def _pack(streams: list[Stream], max_values: int) -> list[list[Stream]]:
    """Group streams into batches of at most ``max_values`` values (a big stream is split first)."""
    groups: list[list[Stream]] = []
    current: list[Stream] = []
    count = 0
    for stream in streams:
        for piece in split_stream(stream, max_values):
            if current and count + len(piece) > max_values:
                groups.append(current)
                current, count = [], 0
            current.append(piece)
            count += len(piece)
    if current:
        groups.append(current)
    return groups


@dataclass
class ScenarioBatcher:
    """Turns the chunks of one scenario run into batches of ``gateway``, numbering them from ``next_seq``.

    The patient is the scenario's patient; device and profile are the scenario device's id and
    profile. Waveforms are included when the chunk carries them. ``epoch`` goes into every batch (a
    random one per run makes a rerun a new spool to the cloud; empty: a gateway from before epochs).
    """

    scenario: Scenario
    gateway: str
    next_seq: int = 0
    max_values: int = DEFAULT_MAX_VALUES
    epoch: str = ""
    _metric_device: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._metric_device = {metric: index for index, device in enumerate(self.scenario.devices)
                               for metric in device.metrics}

    def batches(self, chunk: Chunk) -> list[Batch]:
        """The batches carrying every value of ``chunk``, in device order, with consecutive ``seq``."""
        per_device: list[list[Stream]] = [[] for _ in self.scenario.devices]
        for metric, (times, values) in chunk.numerics.items():
            stream = numeric_stream(metric, times, values)
            if stream is not None:
                per_device[self._metric_device[metric]].append(stream)
        for metric, (start_ns, rate_hz, values) in chunk.waveforms.items():
            wave = waveform_stream(metric, start_ns, rate_hz, values)
            if wave is not None:
                per_device[self._metric_device[metric]].append(wave)
        out: list[Batch] = []
        for device, streams in zip(self.scenario.devices, per_device, strict=True):
            for group in _pack(streams, self.max_values):
                out.append(Batch(self.gateway, self.next_seq, self.scenario.patient.id, device.id,
                                 device.profile, tuple(group), epoch=self.epoch))
                self.next_seq += 1
        return out
