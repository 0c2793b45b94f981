"""R-peak detection on ECG: a streaming detector and the one-pass :func:`detect_r_peaks`.

The detector follows the classic energy-envelope approach, computed at a reduced rate (blocks of
``fs // 120`` samples summed, 250 Hz -> 125 Hz): a 5-15 Hz band-pass keeps the QRS
complex, a five-point derivative and squaring emphasise its steep slopes, a 150 ms moving-window
integral turns each complex into one hump, and humps are judged against adaptive signal and noise
levels with a 200 ms refractory period, a T-wave slope test and a search-back when a beat seems
missing. Inside a motion burst (:mod:`edge.pipeline._qrs_gate`) a hump earlier than 0.8 running RR
intervals after the last beat is taken for motion. Each accepted hump is then placed on the largest
deflection of the (0.5-40 Hz) ECG just before it (at the full rate). Everything is causal and carries
its state, so feeding a record in chunks gives exactly the indices a single pass gives. Per-sample
work is vectorised; Python runs once per hump (about two per beat).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from edge.pipeline._history import LocalMaxima, SampleHistory
from edge.pipeline._qrs_gate import MotionGate

__all__ = ["RPeakDetector", "detect_r_peaks"]

_LEARN_S = 2.0
_REFRACTORY_S = 0.2
_T_WAVE_S = 0.36
_MWI_S = 0.15
_REFINE_S = 0.25
_SEARCH_BACK_FACTOR = 1.66
_MAX_PENDING = 64
_GATHER_BYTES = 64 * 1024
_THRESHOLD = 0.25  # share of the way from the noise level to the signal level
_ENERGY_RATE_HZ = 120.0  # the QRS envelope runs at fs / floor(fs / this) (250 Hz -> 125 Hz)
_BURST_RR = 0.8  # inside a motion burst a beat needs at least this share of the running RR interval


@lru_cache(maxsize=16)
def _qrs_energy_sos(fs: float) -> npt.NDArray[np.float64]:
    # 5-15 Hz band-pass followed by the five-point derivative 2 + z^-1 - z^-3 - 2z^-4, which factors
    # into (1 - z^-2)(2 + z^-1 + 2z^-2): one cascade, one pass over the samples.
    band = sps.butter(2, [5.0, min(15.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    scale = fs / 8.0
    derivative = np.array([[2.0 * scale, scale, 2.0 * scale, 1.0, 0.0, 0.0], [1.0, 0.0, -1.0, 1.0, 0.0, 0.0]])
    sos: npt.NDArray[np.float64] = np.vstack((band, derivative))
    return sos


@lru_cache(maxsize=16)
def _qrs_energy_zi(fs: float) -> npt.NDArray[np.float64]:
    # Steady state of the cascade for a unit step (solving it costs more than filtering a minute).
    zi: npt.NDArray[np.float64] = sps.sosfilt_zi(_qrs_energy_sos(fs))
    return zi


def _rows(values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.float64]:
    """Copies of ``values[start:start + width]`` for each start, as rows (all inside ``values``)."""
    if starts.size == 0:
        return np.zeros((0, width))
    step = values.strides[0]
    windows = np.lib.stride_tricks.as_strided(values, (values.size - width + 1, width), (step, step),
                                              writeable=False)
    rows: npt.NDArray[np.float64] = windows[starts]
    return rows


# A candidate hump: (index of the hump in the integrated energy, its height, R-peak index, QRS slope,
# inside a motion burst: None while the gate has not seen far enough past it).
_Candidate = tuple[int, float, int, float, bool | None]


class RPeakDetector:
    """Streaming R-peak detector for one ECG lead sampled at ``fs`` Hz.

    ``push(chunk)`` takes the next samples (mV, or any unit) and returns the absolute sample
    indices (counted from the first sample ever pushed) of R peaks confirmed by this chunk, in
    ascending order. Peaks are confirmed about 0.2-0.4 s after they occur (up to about 1 s for an
    early beat, which waits for the motion gate, or when a missed beat is recovered by
    search-back). With ``prefiltered=True`` the input is taken as already
    band-passed (0.5-40 Hz, baseline removed) and peaks go on its largest absolute deflection;
    otherwise on the largest deflection from the local baseline. Memory is bounded.
    """

    def __init__(self, fs: float, *, prefiltered: bool = False) -> None:
        if not fs > 20.0:
            raise ValueError("R-peak detection needs a sampling rate above 20 Hz")
        self.fs = float(fs)
        # The QRS energy (5-15 Hz) is found at about 100-200 Hz: blocks of ``factor`` samples are
        # summed (a boxcar whose nulls fall on the multiples of the reduced rate, so little aliases
        # into the band) and the rest of the envelope runs on a fraction of the samples.
        self._factor = max(int(fs // _ENERGY_RATE_HZ), 1)
        fs_energy = self.fs / self._factor
        self._qrs_sos = _qrs_energy_sos(fs_energy).copy()
        self._qrs_zi_unit = _qrs_energy_zi(fs_energy)
        self._qrs_zi: npt.NDArray[np.float64] | None = None
        self._carry = np.zeros(0)  # input samples not yet making a whole block
        self._prefiltered = prefiltered
        self._mwi_len = max(round(_MWI_S * fs_energy), 1)  # in reduced-rate samples
        self._energy_tail = np.zeros(self._mwi_len)
        self._maxima = LocalMaxima(round(_REFRACTORY_S * fs_energy))
        self._refractory = round(_REFRACTORY_S * fs)
        self._t_wave = round(_T_WAVE_S * fs)
        self._refine = round(_REFINE_S * fs)
        # Input samples: the recent ones (``_tail``, starting at ``_tail_start``) and, during a push,
        # the chunk itself, read in place (copying long chunks costs more than the arithmetic).
        # Zeros before the first sample, so the windows of the earliest candidates exist.
        self._tail = np.zeros(self._refine + self._factor * (self._mwi_len + 1) + 1)
        self._tail_start = -self._tail.size
        self._chunk = np.zeros(0)
        self._slope = SampleHistory()  # |QRS slope| at the reduced rate
        self._slope.values = np.zeros(self._mwi_len + 1)
        self._slope.start = -self._slope.values.size
        self._count = 0  # input samples seen
        self._energy_count = 0  # reduced-rate samples made
        self._last_input = 0.0
        self._learn = max(round(_LEARN_S * fs_energy), 1)  # in reduced-rate samples
        self._learn_max = 0.0
        self._learn_sum = 0.0
        # Candidates wait here until the first seconds have set the signal and noise levels.
        self._learning: list[_Candidate] | None = []
        self._spk = 0.0
        self._npk = 0.0
        self._last_beat: _Candidate | None = None
        self._rr: list[int] = []
        self._rr_average = float(fs)  # median of the last 8 RR intervals, in samples
        self._since_beat: list[_Candidate] = []
        self._gate = MotionGate(fs_energy)
        # Humps measured but waiting for the gate (it looks a little past them): reduced-rate
        # indices and their features.
        # Candidates whose judgement waits for the gate's flag (an early hump; rare, and short).
        self._waiting: list[_Candidate] = []

    @property
    def held_samples(self) -> int:
        """Samples held in internal buffers (bounded; for memory checks)."""
        learning = 0 if self._learning is None else len(self._learning)
        return (self._tail.size + self._slope.values.size + self._maxima.held + len(self._since_beat)
                + learning + self._carry.size + self._gate.held
                + len(self._waiting))

    def push(self, chunk: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Feed the next samples; return absolute indices of newly confirmed R peaks."""
        x = np.asarray(chunk, dtype=np.float64)
        if x.size == 0:
            return np.zeros(0, dtype=np.int64)
        self._chunk = x
        self._count += x.size
        self._last_input = float(x[-1])
        reduced = self._reduce(x)
        beats: list[int] = []
        if reduced.size:
            self._energy(reduced, beats)
        # Enough for the placement windows of candidates still waiting for the gate.
        keep = 3 * self._refine + self._factor * (self._mwi_len + 1 + self._gate.delay)
        if self._learning is not None:
            # While learning, candidates wait for judgement and may still need their samples.
            self._tail = np.concatenate((self._tail, x))
        elif x.size >= keep:
            self._tail = x[-keep:].copy()
        else:
            self._tail = np.concatenate((self._tail, x))[-keep:]
        self._tail_start = self._count - self._tail.size
        self._chunk = np.zeros(0)
        self._slope.trim(self._energy_count - self._maxima.radius - self._mwi_len - 2)
        return np.asarray(beats, dtype=np.int64)

    def _reduce(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Block sums of ``factor`` input samples (a partial block waits for the next chunk)."""
        factor = self._factor
        if factor == 1:
            return x
        if self._carry.size:
            x = np.concatenate((self._carry, x))
        whole = x.size - x.size % factor
        self._carry = x[whole:].copy()
        blocks: npt.NDArray[np.float64] = (
            x[0:whole:2] + x[1:whole:2] if factor == 2 else x[:whole].reshape(-1, factor).sum(axis=1)
        )
        return blocks

    def _energy(self, reduced: npt.NDArray[np.float64], beats: list[int]) -> None:
        """Run the QRS envelope over new reduced-rate samples and judge the humps it confirms."""
        if self._qrs_zi is None:
            self._qrs_zi = self._qrs_zi_unit * reduced[0]
        slope, self._qrs_zi = sps.sosfilt(self._qrs_sos, reduced, zi=self._qrs_zi)
        # Moving-window integral of the squared slope as a difference of running sums (O(n), in
        # place where possible). It is left as a sum, not a mean: every level it meets is learnt
        # from the same sums.
        m = self._mwi_len
        running = np.empty(m + slope.size)
        running[:m] = self._energy_tail
        np.square(slope, out=running[m:])
        self._energy_tail = running[-m:].copy()
        np.cumsum(running, out=running)
        mwi = running[m:] - running[:-m]
        start = self._energy_count
        self._energy_count += slope.size
        self._slope.extend(np.abs(slope, out=slope))
        if start < self._learn:
            head = mwi[: self._learn - start]
            self._learn_max = max(self._learn_max, float(head.max()))
            self._learn_sum += float(head.sum())
        self._gate.push(reduced)
        indices, heights = self._maxima.push(mwi)
        candidates = self._waiting
        if candidates:
            self._waiting = []
            candidates = self._flag(candidates)
        if indices.size:
            candidates += self._features(indices, heights)
        if candidates:
            if self._learning is not None:
                self._learning.extend(candidates)
            else:
                self._judge(candidates, beats)
        self._gate.trim()
        if self._learning is not None and self._energy_count >= self._learn:
            pending, self._learning = self._learning, None
            self._spk = 0.5 * self._learn_max
            self._npk = 0.5 * self._learn_sum / self._learn
            self._judge(pending, beats)

    def _flag(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """The candidates with the gate's burst flag where it is known by now."""
        factor = self._factor
        ready_until = self._gate.ready_until()
        known = [c for c in candidates if c[0] // factor < ready_until]
        if not known:
            return candidates
        flags = self._gate.flags(np.array([c[0] // factor for c in known], dtype=np.int64)).tolist()
        return [(*c[:4], flag) for c, flag in zip(known, flags, strict=True)] + candidates[len(known):]

    def _features(self, indices: npt.NDArray[np.int64], heights: npt.NDArray[np.float64]) -> list[_Candidate]:
        """Candidates for humps at reduced-rate ``indices``, vectorised: their input-sample index,
        the R peak (largest ECG deflection in the window before) and the QRS slope."""
        factor = self._factor
        at = indices * factor + (factor - 1)  # the newest input sample of each hump's block
        slope = self._slope
        starts = at - self._refine
        # In groups, so the gathered windows stay small (large temporaries cost more than the work).
        group = max(_GATHER_BYTES // (8 * (self._refine + 1)), 1)
        offsets = np.concatenate([self._deflection(self._ecg_rows(starts[i:i + group], self._refine + 1))
                                  for i in range(0, starts.size, group)])
        place = starts + offsets
        slopes = _rows(slope.values, indices - self._mwi_len - slope.start, self._mwi_len + 1).max(axis=1)
        ready = int(np.searchsorted(indices, self._gate.ready_until()))
        flags: list[bool | None] = [*self._gate.flags(indices[:ready]).tolist(), *[None] * (indices.size - ready)]
        return list(zip(at.tolist(), heights.tolist(), np.maximum(place, 0).tolist(), slopes.tolist(), flags,
                        strict=True))

    def _deflection(self, windows: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Index of the largest deflection in each row (from the local baseline unless prefiltered)."""
        if windows.ndim == 1:
            return self._deflection(windows[None, :])[0]  # type: ignore[no-any-return]
        if self._prefiltered:
            return np.asarray(np.argmax(np.abs(windows), axis=-1), dtype=np.int64)
        # The window ends hold no QRS; their mean is the local baseline (cheaper than a median).
        # The largest deflection is the row's maximum or its minimum, whichever is further from it.
        edge = max(windows.shape[-1] // 8, 1)
        baseline = (windows[:, :edge].sum(axis=1) + windows[:, -edge:].sum(axis=1)) * (0.5 / edge)
        high = windows.argmax(axis=1)
        low = windows.argmin(axis=1)
        rows = np.arange(windows.shape[0])
        up = windows[rows, high] - baseline
        down = baseline - windows[rows, low]
        offsets: npt.NDArray[np.int64] = np.where(up >= down, high, low).astype(np.int64)
        return offsets

    def _judge(self, candidates: list[_Candidate], beats: list[int]) -> None:
        """Accept or reject candidates in order: one compact pass over humps (about two per beat)."""
        refractory, t_wave, refine = self._refractory, self._t_wave, self._refine
        since, rr = self._since_beat, self._rr
        spk, npk, last = self._spk, self._npk, self._last_beat
        for position, candidate in enumerate(candidates):
            index, height, r_index, slope, burst = candidate
            if last is not None:
                if burst is None and not (_BURST_RR * self._rr_average <= index - last[0]
                                          <= _SEARCH_BACK_FACTOR * self._rr_average):
                    # An early hump (or a search-back, which may make it one): whether it sits in a
                    # motion burst decides, so it waits for the gate (a fraction of a second).
                    self._waiting = candidates[position:]
                    break
                if index - last[0] > _SEARCH_BACK_FACTOR * self._rr_average:
                    # Rare: a beat seems missing. Hand the state over, look back, take it again.
                    self._spk, self._npk = spk, npk
                    if self._search_back(beats):
                        spk, last, since = self._spk, self._last_beat, self._since_beat
                        assert last is not None
                gap = index - last[0]
                if gap < refractory:
                    continue
                if burst and gap < _BURST_RR * self._rr_average:
                    # Inside a motion burst an early hump is taken for motion: it neither counts as
                    # noise (motion would raise the threshold over the next beats) nor waits for
                    # search-back.
                    continue
                if height <= npk + _THRESHOLD * (spk - npk) or (gap < t_wave and slope < 0.5 * last[3]):
                    # Below threshold, or a T wave (close to the beat and shallow): noise.
                    npk = 0.125 * height + 0.875 * npk
                    since.append(candidate)
                    if len(since) > _MAX_PENDING:
                        del since[0]
                    continue
                if index - refine <= last[2] + refractory:
                    # Rare (very fast rhythms): keep the previous beat out of the placement window.
                    r_index = self._place_after(last[2] + refractory, index)
                if r_index <= last[2]:
                    r_index = last[2] + 1
                rr.append(gap)
                if len(rr) > 8:
                    del rr[0]
                ordered = sorted(rr)
                self._rr_average = 0.5 * (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2])
            elif height <= npk + _THRESHOLD * (spk - npk):
                npk = 0.125 * height + 0.875 * npk
                since.append(candidate)
                if len(since) > _MAX_PENDING:
                    del since[0]
                continue
            spk = 0.125 * height + 0.875 * spk
            last = (index, height, r_index, slope, burst)
            beats.append(r_index)
            since = []
        self._spk, self._npk, self._last_beat, self._since_beat = spk, npk, last, since

    def _place_after(self, first: int, index: int) -> int:
        window = self._ecg_rows(np.array([first]), index + 1 - first)[0]
        return first + int(self._deflection(window))

    def _ecg_rows(self, starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.float64]:
        """Input samples ``[start, start + width)`` for each absolute start, as rows (all held)."""
        chunk, chunk_start = self._chunk, self._count - self._chunk.size
        inside = starts >= chunk_start
        if inside.all():
            return _rows(chunk, starts - chunk_start, width)
        lead = np.concatenate((self._tail, chunk[:width]))
        rows = np.empty((starts.size, width))
        rows[inside] = _rows(chunk, starts[inside] - chunk_start, width)
        rows[~inside] = _rows(lead, starts[~inside] - self._tail_start, width)
        return rows

    def _search_back(self, beats: list[int]) -> bool:
        threshold = 0.5 * (self._npk + _THRESHOLD * (self._spk - self._npk))
        last = self._last_beat
        eligible = [
            c for c in self._since_beat
            if c[1] > threshold and (last is None or c[0] - last[0] >= self._refractory)
        ]
        if not eligible:
            return False
        best = max(eligible, key=lambda c: c[1])
        self._spk = 0.25 * best[1] + 0.75 * self._spk
        self._accept(best, beats, searched_back=True)
        return True

    def _accept(self, candidate: _Candidate, beats: list[int], *, searched_back: bool = False) -> None:
        last = self._last_beat
        if last is not None:
            rr = self._rr
            rr.append(candidate[0] - last[0])
            if len(rr) > 8:
                del rr[0]
            ordered = sorted(rr)
            self._rr_average = 0.5 * (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2])
            if candidate[2] <= last[2]:
                candidate = (candidate[0], candidate[1], last[2] + 1, candidate[3], candidate[4])
        self._last_beat = candidate
        if searched_back:
            # A beat found by search-back leaves the noise humps after it in play.
            self._since_beat = [c for c in self._since_beat if c[0] > candidate[0]]
        else:
            self._since_beat = []
        beats.append(candidate[2])

    def finish(self) -> npt.NDArray[np.int64]:
        """Flush the end of a record: judge the last samples (by holding the last value 1 s)."""
        if self._count == 0:
            return np.zeros(0, dtype=np.int64)
        end = self._count
        last = self._last_input
        tail = self.push(np.full(round(1.0 * self.fs), last))
        return tail[tail < end]


def detect_r_peaks(signal: npt.ArrayLike, fs: float) -> npt.NDArray[np.int64]:
    """Return the sample indices of the R peaks in one ECG lead (one pass, offline).

    ``signal`` is the raw lead (any unit, typically mV) sampled at ``fs`` Hz (> 20 Hz). The result
    is a sorted int64 array of indices into ``signal``. Same algorithm as :class:`RPeakDetector`.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("signal must be one-dimensional")
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    detector = RPeakDetector(fs)
    peaks = np.concatenate((detector.push(x), detector.finish()))  # strictly increasing, never negative
    return peaks[peaks < x.size]
