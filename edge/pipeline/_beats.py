"""Shared machinery of the derive stages: beats in, rate (and RR) streams out (internal)."""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field

from edge.pipeline import hrv
from edge.pipeline._gaps import WaveformClock
from edge.pipeline._options import PositiveNumber, StageOptions
from edge.pipeline._stage import Stage
from edge.pipeline._streams import irregular
from edge.pipeline.sqi import WindowedSqi
from vitals import CATALOGUE, Quality, Stream

__all__: list[str] = []


class BeatDetector(Protocol):
    """What a derive stage needs from a detector."""

    def push(self, chunk: npt.ArrayLike) -> npt.NDArray[np.int64]: ...

    @property
    def held_samples(self) -> int: ...



class BeatOptions(StageOptions):
    """Beats for the rate median, HRV window (s), beats for AF irregularity, SQI window (s) and floor (0-1)."""

    rate_beats: Annotated[int, Field(ge=1, le=1000)] = 8
    hrv_window_s: PositiveNumber = 300.0
    af_beats: Annotated[int, Field(ge=8, le=10_000)] = 32
    sqi_window_s: PositiveNumber = 5.0
    min_sqi: Annotated[float, Field(ge=0, le=1)] = 0.5


class BeatDeriveStage(Stage):
    """Detect beats in a waveform and derive a rate metric (and RR intervals, HRV, AF indicator).

    Subclasses set ``rate_metric``, ``emit_rr``, ``sqi_kind`` and build the detector.
    """

    rate_metric = "heart_rate"
    emit_rr = True
    sqi_kind = "kurtosis"
    Options: ClassVar[type[StageOptions]] = BeatOptions

    def __init__(self, metric: Any, options: Mapping[str, Any]) -> None:
        super().__init__(metric, options)
        self.rate_beats = max(int(self._option_float("rate_beats")), 1)
        self.hrv_window_ns = int(self._option_float("hrv_window_s") * 1e9)
        self.af_beats = max(int(self._option_float("af_beats")), 8)
        self.sqi_window_s = self._option_float("sqi_window_s")
        self.min_sqi = self._option_float("min_sqi")
        self._detector: BeatDetector | None = None
        self._sqi: WindowedSqi | None = None
        self._rate: float | None = None
        self._count = 0  # samples seen
        self._last_beat_ns: int | None = None
        self._clock = WaveformClock()
        self._previous_chunk: tuple[int, int, float] | None = None  # (first time, first index, rate)
        # Bounded: at most 5 beats/s over the HRV window (and trimmed by time).
        self._rr: deque[tuple[int, float]] = deque(maxlen=max(int(self.hrv_window_ns / 1e9 * 5), 16))
        self.last_sqi: float | None = None

    def make_detector(self, fs: float) -> BeatDetector:
        """Return a fresh streaming detector for ``fs`` Hz."""
        raise NotImplementedError

    @property
    def held(self) -> int:
        """Samples and beats held (bounded)."""
        detector = 0 if self._detector is None else self._detector.held_samples
        sqi = 0 if self._sqi is None else self._sqi.held
        return detector + sqi + len(self._rr)

    def process(self, stream: Stream) -> list[Stream]:
        """Pass the waveform on; add the derived rate (and RR) streams for beats found."""
        if len(stream) == 0:
            return []
        if stream.rate_hz is None:
            return [stream]
        flushed: list[Stream] = []
        gap = self._clock.starts_afresh(stream)
        if self._detector is None or self._rate != stream.rate_hz or gap:
            if gap and self._detector is not None:
                # The beats of the stretch before the gap that the detector still holds, then a
                # fresh start: no beat, and no RR interval, spans the missing samples.
                self.counters["gaps"] += 1
                flushed = self._flush_stretch()
            self._rate = stream.rate_hz
            self._detector = self.make_detector(stream.rate_hz)
            self._sqi = WindowedSqi(stream.rate_hz, self.sqi_window_s, self.sqi_kind)
            self._count = 0
            self._last_beat_ns = None
        assert self._sqi is not None
        chunk_start = self._count
        self._previous_chunk = (int(stream.times_ns[0]), chunk_start, stream.rate_hz)
        self._count += len(stream)
        for _index, score in self._sqi.push(np.asarray(stream.values)):
            self.counters["sqi_windows"] += 1
            self.counters["sqi_low_windows"] += int(score < self.min_sqi)
            self.last_sqi = score
        beats = self._detector.push(np.asarray(stream.values))
        if beats.size == 0:
            return [stream, *flushed]
        period_ns = 1e9 / stream.rate_hz
        first_ns = int(stream.times_ns[0])
        beat_times = [first_ns + round((b - chunk_start) * period_ns) for b in beats.tolist()]
        return [stream, *flushed, *self._derive(beats.tolist(), beat_times)]

    def _flush_stretch(self) -> list[Stream]:
        """Beats the detector still holds at the end of a stretch (detectors that can say)."""
        finish = getattr(self._detector, "finish", None)
        if finish is None or self._previous_chunk is None:
            return []
        beats = [int(b) for b in finish()]
        if not beats:
            return []
        first_ns, first_index, rate = self._previous_chunk
        times = [first_ns + round((b - first_index) * 1e9 / rate) for b in beats]
        return self._derive(beats, times)

    def _derive(self, beats: list[int], beat_times: list[int]) -> list[Stream]:
        assert self._sqi is not None
        rr_times, rr_values, rate_values, quality = [], [], [], []
        low, high = CATALOGUE["rr_interval"].plausible
        for index, time_ns in zip(beats, beat_times, strict=True):
            self.counters["beats"] += 1
            previous, self._last_beat_ns = self._last_beat_ns, time_ns
            if previous is None:
                continue
            rr_ms = (time_ns - previous) / 1e6
            if not low <= rr_ms <= high:
                self.counters["rr_implausible"] += 1
                continue
            self._rr.append((time_ns, rr_ms))
            recent = [rr for _t, rr in itertools.islice(self._rr, max(len(self._rr) - self.rate_beats, 0), None)]
            # Quality of the last complete SQI window before the beat (chunking cannot change it).
            score = self._sqi.scores.get(index // self._sqi.window - 1)
            flag = int(Quality.LOW_SIGNAL_QUALITY) if score is not None and score < self.min_sqi else 0
            rr_times.append(time_ns)
            rr_values.append(round(rr_ms))
            rate_values.append(round(60_000.0 / statistics.median(recent)))
            quality.append(flag)
        while self._rr and self._rr[0][0] < beat_times[-1] - self.hrv_window_ns:
            self._rr.popleft()
        if not rr_times:
            return []
        rate_unit = CATALOGUE[self.rate_metric].unit
        out = [irregular(self.rate_metric, rate_unit, rr_times, rate_values, quality)]
        if self.emit_rr:
            out.append(irregular("rr_interval", CATALOGUE["rr_interval"].unit, rr_times, rr_values, quality))
        return out

    @property
    def indicators(self) -> dict[str, float | bool | None]:
        """Latest HRV (SDNN, RMSSD in ms over ``hrv_window_s``), AF irregularity and signal quality."""
        if not self.emit_rr:
            return {"sqi": self.last_sqi}
        rr = np.array([value for _t, value in self._rr])
        irregularity = hrv.af_irregularity(rr[-self.af_beats:])
        return {
            "sdnn_ms": hrv.sdnn_ms(rr),
            "rmssd_ms": hrv.rmssd_ms(rr),
            "af_irregularity": irregularity,
            "af_suspected": bool(irregularity > hrv.AF_IRREGULARITY_THRESHOLD),
            "sqi": self.last_sqi,
        }
