"""Indicators the derive stages send to the cloud: signal quality, HRV and AF irregularity (internal).

:class:`IndicatorStage` sits on :class:`edge.pipeline._beats.BeatDeriveStage` and adds, to what it
derives, catalogue streams that travel in the batches:

* the waveform's signal quality index (``sqi_metric``: ``ecg_sqi`` or ``ppg_sqi``), one reading per
  ``sqi_window_s`` window, at the window's last sample;
* with RR intervals (``emit_rr``): ``hrv_sdnn`` and ``hrv_rmssd`` (ms) over the RR intervals of the
  last ``hrv_window_s``, and ``af_irregularity`` over the last ``af_beats`` of them, once per
  ``indicator_interval_s``: at the first beat of each interval of the wall clock (the interval's
  boundaries are multiples of it since the epoch), computed from the beats up to that one. They
  wait for ``af_beats`` intervals, and are flagged ``Quality.LOW_SIGNAL_QUALITY`` when more than a
  fifth of the intervals they use are.

A chunk is fed to the base stage in pieces that end on SQI window boundaries, so every window's
score is seen (the base keeps only the last few) and the output does not depend on how the
waveform was chunked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from edge.pipeline import hrv
from edge.pipeline._beats import BeatDeriveStage, BeatOptions
from edge.pipeline._options import StageOptions
from edge.pipeline._streams import irregular
from vitals import CATALOGUE, Quality, Stream

__all__: list[str] = []

_LOW = int(Quality.LOW_SIGNAL_QUALITY)
_FLAGGED_SHARE = 0.2  # more than this share of flagged intervals flags an HRV/AF reading


class IndicatorOptions(BeatOptions):
    """The beat options with an SQI window (s) of at least 1 s: the catalogue's rate limit for SQI readings."""

    sqi_window_s: Annotated[float, Field(ge=1.0, le=600.0, allow_inf_nan=False)] = 5.0


class RhythmIndicatorOptions(IndicatorOptions):
    """:class:`IndicatorOptions` and the interval (s) between HRV/AF readings."""

    indicator_interval_s: Annotated[float, Field(ge=10.0, le=3600.0, allow_inf_nan=False)] = 60.0


class IndicatorStage(BeatDeriveStage):
    """A derive stage that also sends its signal quality and, from RR intervals, HRV and AF readings."""

    sqi_metric: ClassVar[str] = "ecg_sqi"
    Options: ClassVar[type[StageOptions]] = IndicatorOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        self.indicator_interval_ns = int(self._option_float("indicator_interval_s", 60.0) * 1e9)
        self._sent_windows = -1  # index of the last SQI window sent
        self._slot: int | None = None  # wall-clock interval of the last HRV/AF reading
        # (time, rr ms, flagged) over the HRV window; bounded like the base's own history.
        self._history: deque[tuple[int, float, bool]] = deque(maxlen=self._rr.maxlen)

    @property
    def held(self) -> int:
        """Samples and beats held (bounded)."""
        return super().held + len(self._history)

    def process(self, stream: Stream) -> list[Stream]:
        """Pass the waveform on with the rate (and RR) streams and the indicator readings."""
        if len(stream) == 0 or stream.rate_hz is None:
            return super().process(stream)
        fresh = self._detector is None or self._rate != stream.rate_hz
        if fresh:
            self._sent_windows = -1
        window = max(round(self.sqi_window_s * stream.rate_hz), 8)  # as the base's WindowedSqi
        start = 0 if fresh else self._count
        derived: dict[str, list[Stream]] = {}
        sqi_times: list[int] = []
        sqi_values: list[float] = []
        position = 0
        while position < len(stream):
            absolute = start + position
            end = min(len(stream), position + window - absolute % window)
            piece = _slice(stream, position, end)
            for result in super().process(piece):
                if result.metric != stream.metric:
                    derived.setdefault(result.metric, []).append(result)
            assert self._sqi is not None
            for index in sorted(i for i in self._sqi.scores if i > self._sent_windows):
                last_sample = (index + 1) * window - 1 - absolute  # offset in this piece
                sqi_times.append(int(piece.times_ns[min(max(last_sample, 0), len(piece) - 1)]))
                sqi_values.append(round(self._sqi.scores[index], 2))
                self._sent_windows = index
            position = end
        out: list[Stream] = [stream, *(_concat(parts) for parts in derived.values())]
        if sqi_times:
            out.append(irregular(self.sqi_metric, CATALOGUE[self.sqi_metric].unit, sqi_times, sqi_values,
                                 [0] * len(sqi_times)))
        if self.emit_rr and "rr_interval" in derived:
            out += self._hrv(_concat(derived["rr_interval"]))
        return out

    def _hrv(self, rr: Stream) -> list[Stream]:
        times: list[int] = []
        readings: list[tuple[float, float, float]] = []
        quality: list[int] = []
        for time_ns, value, flag in zip(rr.times_ns.tolist(), rr.values.tolist(), rr.quality.tolist(), strict=True):
            self._history.append((time_ns, value, bool(flag & _LOW)))
            while self._history and self._history[0][0] < time_ns - self.hrv_window_ns:
                self._history.popleft()
            slot = time_ns // self.indicator_interval_ns
            if self._slot is not None and slot <= self._slot:
                continue
            if len(self._history) < self.af_beats:
                continue
            self._slot = slot
            values = np.array([v for _t, v, _f in self._history])
            flagged = sum(f for _t, _v, f in self._history)
            recent = values[-self.af_beats:]
            times.append(time_ns)
            readings.append((round(hrv.sdnn_ms(values), 1), round(hrv.rmssd_ms(values), 1),
                             round(hrv.af_irregularity(recent), 3)))
            quality.append(_LOW if flagged > _FLAGGED_SHARE * len(values) else 0)
        if not times:
            return []
        columns = list(zip(*readings, strict=True))
        return [
            irregular(metric, CATALOGUE[metric].unit, times, column, quality)
            for metric, column in zip(("hrv_sdnn", "hrv_rmssd", "af_irregularity"), columns, strict=True)
        ]


def _slice(stream: Stream, first: int, last: int) -> Stream:
    if first == 0 and last == len(stream):
        return stream
    return Stream(stream.metric, stream.unit, stream.times_ns[first:last], stream.values[first:last],
                  stream.quality[first:last], rate_hz=stream.rate_hz, scale=stream.scale)


def _concat(parts: list[Stream]) -> Stream:
    # Pieces of one metric, already in time order.
    if len(parts) == 1:
        return parts[0]
    return Stream(parts[0].metric, parts[0].unit, np.concatenate([p.times_ns for p in parts]),
                  np.concatenate([p.values for p in parts]), np.concatenate([p.quality for p in parts]))
