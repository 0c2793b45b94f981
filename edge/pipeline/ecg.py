"""R-peak detection on ECG: a streaming detector and the one-pass :func:`detect_r_peaks`.

The detector follows the classic energy-envelope approach, computed at a reduced rate (blocks of
``fs // 120`` samples summed, 250 Hz -> 125 Hz): a 10-25 Hz band-pass keeps the steep part of the
QRS complex (above the 0.5-8 Hz of electrode motion and the P and T waves), a five-point derivative
and squaring emphasise its slopes, a 150 ms moving-window integral turns each complex into one
hump, and humps are judged against adaptive signal and noise levels with a 200 ms refractory
period, a T-wave slope test and a search-back when a beat seems missing. A hump earlier than 0.8
running RR intervals after the last beat is noise if it is far shallower than beats are, and is
taken for motion inside a motion burst (:mod:`edge.pipeline._qrs_gate`). Each accepted hump is then
placed on the largest deflection of the ECG just before it (at the full rate). A second envelope,
in a wider band (6-25 Hz), finds wide ventricular beats too, whose slopes lie mostly below 10 Hz;
:class:`RPeakDetector` takes its beats where the QRS band's leave a pause. Everything is causal
and carries its state, and every value is computed from the samples alone (no running sums
restarted per chunk), so feeding a record in chunks gives exactly the indices a single pass gives.
Per-sample work is vectorised and reuses a few buffers (fresh memory costs more than the arithmetic
on it); the judgement of each hump (about two per beat) is plain Python.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from functools import lru_cache
from itertools import repeat
from operator import itemgetter

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from edge.pipeline._envelope import dominant, dominant_many, iir, rows, window_sums
from edge.pipeline._qrs_gate import MotionGate

__all__ = ["RPeakDetector", "detect_r_peaks"]

_LEARN_S = 2.0
_REFRACTORY_S = 0.2
_T_WAVE_S = 0.36
_MWI_S = 0.15
_REFINE_S = 0.25
_SEARCH_BACK_FACTOR = 1.66
_MAX_PENDING = 64
_FEW_HUMPS = 24  # up to this many humps in a push, plain Python finds the highest ones fastest
_JOIN_SAMPLES = 8192  # chunks up to this long are joined to the held samples for gathering
_UNPLACED = -1  # R-peak index of a candidate not placed yet (only beats are, when accepted)
_THRESHOLD = 0.25  # share of the way from the noise level to the signal level
# The QRS band: above the 0.5-8 Hz of electrode motion and the P and T waves, where a narrow QRS
# keeps most of its slope. Wide ventricular beats (QRS 120-200 ms) keep little of theirs there; a
# second envelope in a wider band finds them (see :class:`RPeakDetector`).
_QRS_BAND_HZ = (10.0, 25.0)
_WIDE_BAND_HZ = (6.0, 25.0)
_WIDE_THRESHOLD = 0.22
# A beat only the wide band finds counts where the beats of the QRS band leave a pause: their
# interval around it at least this many typical RR intervals (of the beats so far). Motion the wide
# band takes for a beat falls inside an ordinary interval.
_PAUSE_RR = 1.2
# ... or, for the first beat of a couplet, an interval of this many, and of this many to the beat
# after the next.
_COUPLET_RR, _COUPLET_PAUSE_RR = 1.05, 2.5
_APART_RR = 0.35  # ... and at least this many typical RR intervals from each of them (and 200 ms)
_PENDING_WIDE = 64  # wide-band beats waiting for the QRS band's verdict (bounded)
_ENERGY_RATE_HZ = 120.0  # the QRS envelope runs at fs / floor(fs / this) (250 Hz -> 125 Hz)
_BURST_RR = 0.8  # inside a motion burst a beat needs at least this share of the running RR interval
# An early hump (before that share of the RR interval) needs at least this share of the running
# squared QRS slope of beats (0.45 of the square: about two thirds of the slope). In the wide band
# a premature ventricular beat keeps more of its slope but still less than sinus beats: 0.2 there.
_EARLY_SLOPE = 0.45
_WIDE_EARLY_SLOPE = 0.2
# The motion gate's window and lead (0.25 s blocks): the wide band's takes a couplet of wide beats.
_GATE_BLOCKS = (4, 2)
_WIDE_GATE_BLOCKS = (6, 3)


@lru_cache(maxsize=16)
def _qrs_slope_filter(fs: float, band: tuple[float, float]) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The QRS slope as one filter: a band-pass (``band``, Hz) and the five-point derivative
    2 + z^-1 - z^-3 - 2z^-4 after it (unscaled: every level is relative), in transfer-function
    form. At the reduced rate the band's poles sit well inside the unit circle, so the direct form
    is accurate, and one lfilter call costs a fraction of sosfilt's (or of the derivative's
    separate vector operations). The third array: the steady state for a unit step (a derivative:
    none). Very low rates, below 50 Hz, get the band scaled down to fit under Nyquist."""
    b, a = sps.butter(2, [min(band[0], 0.2 * fs), min(band[1], 0.45 * fs)], btype="bandpass", fs=fs)
    b = np.convolve(b, [2.0, 1.0, 0.0, -1.0, -2.0])
    return b, a, sps.lfilter_zi(b, a)


# A candidate hump: (input index of the hump, its height, R-peak index, squared QRS slope, inside a motion
# burst: None while the gate has not seen far enough past it).
_Candidate = tuple[int, float, int, float, bool | None]


class _EnergyDetector:
    """One QRS energy envelope and its beat judgement (see the module doc), in one band.

    ``push`` returns confirmed R peaks (ascending absolute indices); after it, ``bursts`` says for
    each whether its hump sat in a motion burst (False where the gate had not flagged it yet), and
    :attr:`settled` is the index below which no later push returns a peak.
    """

    def __init__(self, fs: float, *, prefiltered: bool, band_hz: tuple[float, float], threshold: float,
                 early_slope: float, gate_blocks: tuple[int, int]) -> None:
        self.fs = float(fs)
        self._threshold = threshold
        self._early_slope = early_slope
        self.bursts: list[bool] = []
        # The QRS energy (10-25 Hz) is found at about 100-200 Hz: blocks of ``factor`` samples are
        # summed (a boxcar whose nulls fall on the multiples of the reduced rate, so little aliases
        # into the band) and the rest of the envelope runs on a fraction of the samples.
        self._factor = max(int(fs // _ENERGY_RATE_HZ), 1)
        fs_energy = self.fs / self._factor
        self._slope_b, self._slope_a, self._slope_zi_unit = _qrs_slope_filter(fs_energy, band_hz)
        self._slope_zi: npt.NDArray[np.float64] | None = None
        self._carry = np.zeros(0)  # input samples not yet making a whole block
        self._prefiltered = prefiltered
        m = self._mwi_len = max(round(_MWI_S * fs_energy), 1)  # in reduced-rate samples
        r = self._radius = max(round(_REFRACTORY_S * fs_energy), 1)  # humps: highest within this
        # The squared QRS slope of the latest reduced samples: what the moving-window integral and
        # the slope windows of humps still to be judged reach back to (zeros before the start).
        self._squared = np.zeros(m + r + 2)
        # Integrated energy from ``_mwi_start`` on: samples not yet searched for humps and the
        # context on their left; humps before ``_next`` are found already.
        self._mwi = np.zeros(2 * r + 2)
        self._mwi_start = -self._mwi.size
        self._next = 0
        self._refractory = round(_REFRACTORY_S * fs)
        self._t_wave = round(_T_WAVE_S * fs)
        self._refine = round(_REFINE_S * fs)
        self._gate = MotionGate(fs_energy, window_blocks=gate_blocks[0], lead_blocks=gate_blocks[1])
        # Input samples: the recent ones (``_tail``, starting at ``_tail_start``) and, during a push,
        # the chunk itself, read in place (copying long chunks costs more than the arithmetic).
        # Zeros before the first sample, so the windows of the earliest candidates exist.
        self._keep = 3 * self._refine + self._factor * (m + r + 2 + self._gate.delay)
        self._tail = np.zeros(self._refine + self._factor * (m + r + 2))
        self._tail_start = -self._tail.size
        self._chunk = np.zeros(0)
        self._count = 0  # input samples seen
        self._energy_count = 0  # reduced-rate samples made
        self._last_input = 0.0
        self._learn = max(round(_LEARN_S * fs_energy), 1)  # in reduced-rate samples
        self._learn_max = 0.0
        self._learn_sum = 0.0
        # Candidates wait here until the first seconds have set the signal and noise levels.
        self._learning: list[_Candidate] | None = []
        self._first_unflagged: int | None = None  # the first of them without a burst flag yet
        self._spk = 0.0
        self._npk = 0.0
        self._slope_level = 0.0  # running squared QRS slope of beats (0.125 weight, like ``_spk``)
        self._last_beat: _Candidate | None = None
        self._accepted: list[_Candidate] = []  # beats accepted by this push, to be placed
        self._searched_back: list[int] = []  # which of them search-back found
        self._last_peak: int | None = None  # R-peak index of the last beat
        self._rr: list[int] = []  # the last (up to 8) RR intervals (samples), oldest first
        self._rr_ordered: list[int] = []  # the same, in ascending order
        self._rr_average = float(fs)  # median of the last 8 RR intervals, in samples
        self._since_beat: list[_Candidate] = []
        # Candidates whose judgement waits for the gate's flag (an early hump; rare, and short).
        self._waiting: list[_Candidate] = []

    @property
    def held_samples(self) -> int:
        """Samples held in internal buffers (bounded)."""
        learning = 0 if self._learning is None else len(self._learning)
        return (self._tail.size + self._squared.size + self._mwi.size + len(self._since_beat)
                + learning + self._carry.size + self._gate.held + len(self._waiting))

    def push(self, chunk: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Feed the next samples; return absolute indices of newly confirmed R peaks."""
        x = np.ascontiguousarray(chunk, dtype=np.float64)
        if x.size == 0:
            self.bursts = []
            return np.zeros(0, dtype=np.int64)
        self._chunk = x
        self._count += x.size
        self._last_input = float(x[-1])
        reduced, work = self._reduce(x)
        if reduced.size:
            self._energy(reduced, work)
        self.bursts = [c[4] is True for c in self._accepted]
        beats = self._place_accepted() if self._accepted else []
        if self._since_beat and self._learning is None:
            self._place_aging(self._count - self._keep)
        keep = self._keep
        if self._learning is not None:
            # While learning, candidates wait for judgement and may still need their samples.
            self._tail = np.concatenate((self._tail, x))
        elif x.size >= keep:
            self._tail = x[-keep:].copy()
        else:
            self._tail = np.concatenate((self._tail, x))[-keep:]
        self._tail_start = self._count - self._tail.size
        self._chunk = self._tail[:0]
        return np.array(beats, dtype=np.int64)

    def _reduce(self, x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Block sums of ``factor`` input samples (a partial block waits for the next chunk), and a
        work buffer a little longer than them (the block sums' own, when they are not needed)."""
        factor = self._factor
        if self._carry.size:
            x = np.concatenate((self._carry, x))
        n = x.size // factor
        whole = n * factor
        self._carry = x[whole:].copy()
        work = np.empty(n + self._mwi_len + 4)
        if factor == 1:
            return x[:whole], work
        # Strided sums, each block added up in order: far cheaper than summing a reshaped axis.
        blocks = work[:n]
        np.add(x[0:whole:factor], x[1:whole:factor], out=blocks)
        for k in range(2, factor):
            blocks += x[k:whole:factor]
        return blocks, work

    def _energy(self, reduced: npt.NDArray[np.float64], work: npt.NDArray[np.float64]) -> None:
        """Run the QRS envelope over new reduced-rate samples and judge the humps it confirms.

        Large chunks make large arrays, and fresh memory costs more than the arithmetic on it, so
        the envelope reuses two work buffers (``work``, whose head holds ``reduced``, and one more).
        """
        n = reduced.size
        if self._slope_zi is None:
            self._slope_zi = self._slope_zi_unit * reduced[0]
        # Squared QRS slope after its context: the slope windows of humps and the moving-window
        # integral reach back into it.
        context = self._squared.size
        squared = np.empty(context + n)
        squared[:context] = self._squared
        slope, self._slope_zi = iir(self._slope_b, self._slope_a, reduced, self._slope_zi)
        self._gate.push(reduced)  # the last reader of ``reduced``: ``work`` is free from here on
        np.square(slope, out=squared[context:])
        self._squared = squared[-context:]
        # Moving-window integral of the last ``m`` squared slopes, after the integral's own context
        # (the hump search looks around each sample). A sum, not a mean: every level it meets is
        # learnt from the same sums.
        m = self._mwi_len
        offset = self._mwi.size
        mwi_all = np.empty(offset + n)
        mwi_all[:offset] = self._mwi
        mwi = mwi_all[offset:]
        window_sums(squared[context - m + 1:], m, mwi, work, np.empty(n + m))
        start = self._energy_count
        self._energy_count += reduced.size
        if start < self._learn:
            head = mwi[: self._learn - start]
            self._learn_max = max(self._learn_max, float(head.max()))
            self._learn_sum += float(head.sum())
        candidates = self._waiting
        if candidates:
            self._waiting = []
            candidates = self._flag(candidates)
        humps, heights = self._humps(mwi_all)
        if humps.size:
            # The (squared) QRS slope of each hump: the steepest of the samples it integrates.
            slopes = rows(squared, humps - (m + start - context), m + 1).max(axis=1)
            candidates += self._features(humps, heights, slopes)
        if candidates:
            if self._learning is not None:
                self._hold(self._learning, candidates)
            else:
                self._judge(candidates)
        if self._learning is not None and self._energy_count >= self._learn:
            pending, self._learning = self._learning, None
            self._spk = 0.5 * self._learn_max
            self._npk = 0.5 * self._learn_sum / self._learn
            # Humps found before the gate was warm, or near the end of a push, have no flag yet; by
            # now most do.
            unflagged = self._first_unflagged
            if unflagged is not None:
                pending[unflagged:] = self._flag(pending[unflagged:])
            self._judge(pending)
        if self._learning is None:
            # Flags of the learning seconds stay until their humps are judged (a few seconds' worth).
            self._gate.trim()

    def _hold(self, learning: list[_Candidate], candidates: list[_Candidate]) -> None:
        """Add candidates to those held until the levels are learnt, noting where the first without
        a burst flag is (those without one end each push's candidates)."""
        if self._first_unflagged is None:
            first = len(candidates)
            while first and candidates[first - 1][4] is None:
                first -= 1
            if first < len(candidates):
                self._first_unflagged = len(learning) + first
        learning.extend(candidates)

    def _humps(self, values: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Reduced indices (ascending) and heights of newly confirmed humps of the integrated energy:
        samples above their left neighbour and not below their right one (plateaus: the first
        sample) that no hump within the refractory radius beats. A sample is judged once ``radius``
        + 1 later samples are known, so chunks cannot change the result."""
        r = self._radius
        base = self._mwi_start
        stop = base + values.size - r - 1  # judge indices < stop
        if stop <= self._next:
            self._mwi = values
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        # Humps in [next - radius, stop + radius): everything that can beat a judged sample.
        lo = self._next - r - base
        hi = stop + r - base
        first, last = self._next - base - lo, stop - base - lo  # judged: humps in [first, last)
        middle = values[lo:hi]
        humps = np.flatnonzero((middle > values[lo - 1:hi - 1]) & (middle >= values[lo + 1:hi + 1]))
        heights = middle[humps]
        if humps.size <= _FEW_HUMPS:
            chosen = dominant(humps.tolist(), heights.tolist(), r, first, last)
            humps, heights = humps[chosen], heights[chosen]
        else:
            keep = dominant_many(humps, heights, r, first, last)
            humps, heights = humps[keep], heights[keep]
        keep_from = stop - 2 * r - 2
        self._mwi = values[keep_from - base:].copy()
        self._mwi_start = keep_from
        self._next = stop
        return humps + (lo + base), heights

    def _flag(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """The candidates with the gate's burst flag where it is known by now."""
        factor = self._factor
        ready_until = self._gate.ready_until()
        flagged: list[_Candidate] = []
        for position, candidate in enumerate(candidates):
            if candidate[4] is None:
                if candidate[0] // factor >= ready_until:
                    return flagged + candidates[position:]
                candidate = (*candidate[:4], self._gate.flag(candidate[0] // factor))
            flagged.append(candidate)
        return flagged

    def _features(self, humps: npt.NDArray[np.int64], heights: npt.NDArray[np.float64],
                  slopes: npt.NDArray[np.float64]) -> list[_Candidate]:
        """Candidates for humps at reduced-rate indices, vectorised: their input-sample index,
        height, squared slope and the burst flag where known. The R peak is found later, for
        accepted beats only (about half the humps)."""
        factor = self._factor
        at = humps * factor + (factor - 1)  # the newest input sample of each hump's block
        ready = int(np.searchsorted(humps, self._gate.ready_until()))
        flags: list[bool | None] = self._gate.flags(humps[:ready]).tolist()
        if ready < humps.size:
            flags += [None] * (humps.size - ready)
        return list(zip(at.tolist(), heights.tolist(), repeat(_UNPLACED), slopes.tolist(), flags))

    def _deflections(self, starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.int64]:
        """Offset of the largest deflection in each held input window ``[start, start + width)``
        (ascending absolute starts): from the local baseline unless prefiltered."""
        return self._deflection(self._ecg_rows(starts, width))

    def _deflection(self, windows: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Index of the largest deflection in each row (from the local baseline unless prefiltered)."""
        if self._prefiltered:
            return np.asarray(np.argmax(np.abs(windows), axis=1), dtype=np.int64)
        # The window ends hold no QRS; their mean is the local baseline (cheaper than a median),
        # added up pair by pair in order (first + last, then the next pair, ...).
        # The largest deflection is the row's maximum or its minimum, whichever is further from it.
        edge = max(windows.shape[1] // 8, 1)
        baseline = (windows[:, :edge] + windows[:, -edge:]).cumsum(axis=1)[:, -1] * (0.5 / edge)
        high = windows.argmax(axis=1)
        low = windows.argmin(axis=1)
        row = np.arange(windows.shape[0])
        up = windows[row, high] - baseline
        down = baseline - windows[row, low]
        offsets: npt.NDArray[np.int64] = np.where(up >= down, high, low)
        return offsets

    def _judge(self, candidates: list[_Candidate]) -> None:
        """Accept or reject candidates in order: one compact pass over humps (about two per beat)."""
        refractory, t_wave = self._refractory, self._t_wave
        since, rr, ordered, accepted = self._since_beat, self._rr, self._rr_ordered, self._accepted
        average = self._rr_average
        spk, npk, last = self._spk, self._npk, self._last_beat
        share = self._threshold
        threshold = npk + share * (spk - npk)
        early, late = _BURST_RR * self._rr_average, _SEARCH_BACK_FACTOR * self._rr_average
        position = 0
        if last is None:
            # Before the first beat: the threshold alone decides.
            for position, candidate in enumerate(candidates, 1):  # noqa: B007 (position is used below)
                height = candidate[1]
                if height <= threshold:
                    npk = 0.125 * height + 0.875 * npk
                    threshold = npk + share * (spk - npk)
                    since.append(candidate)
                    continue
                spk = 0.125 * height + 0.875 * spk
                threshold = npk + share * (spk - npk)
                self._slope_level = candidate[3]
                last = candidate
                accepted.append(candidate)
                since = []
                break
        if last is not None:
            # The last beat's hump index and a quarter of its squared slope (the T-wave test: half
            # the slope), as plain locals.
            last_index, t_slope = last[0], 0.25 * last[3]
            slope_level = self._slope_level
            early_slope = self._early_slope * slope_level
            count = len(candidates)
            while position < count:
                candidate = candidates[position]
                position += 1
                index, height, _, slope, burst = candidate
                gap = index - last_index
                if burst is None and not early <= gap <= late:
                    # An early hump (or a search-back, which may make it one): whether it sits in
                    # a motion burst decides, so it waits for the gate (a fraction of a second).
                    self._waiting = candidates[position - 1:]
                    break
                if gap > late:
                    # Rare: a beat seems missing. Hand the state over, look back, take it again.
                    del since[:-_MAX_PENDING]
                    self._spk, self._npk, self._last_beat, self._since_beat = spk, npk, last, since
                    self._rr_average = average
                    self._slope_level = slope_level
                    if self._search_back():
                        spk, last, since = self._spk, self._last_beat, self._since_beat
                        slope_level = self._slope_level
                        early_slope = self._early_slope * slope_level
                        last_index, t_slope = last[0], 0.25 * last[3]
                        threshold = npk + share * (spk - npk)
                        average = self._rr_average
                        early, late = _BURST_RR * average, _SEARCH_BACK_FACTOR * average
                        gap = index - last_index
                if gap < refractory:
                    continue
                if burst and gap < early:
                    # Inside a motion burst an early hump is taken for motion: it neither counts
                    # as noise (motion would raise the threshold over the next beats) nor waits
                    # for search-back.
                    continue
                if height <= threshold or (gap < t_wave and slope < t_slope) or (gap < early and slope < early_slope):
                    # Below threshold, a T wave (close to the beat and shallow), or early and far
                    # shallower than beats are (motion, which the gate can miss at a burst's
                    # edges and late in a long one; premature beats are as steep as the rest): noise.
                    npk = 0.125 * height + 0.875 * npk
                    threshold = npk + share * (spk - npk)
                    since.append(candidate)
                    continue
                if len(rr) == 8:
                    ordered.remove(rr.pop(0))
                    rr.append(gap)
                    insort(ordered, gap)
                    average = 0.5 * (ordered[3] + ordered[4])
                else:
                    rr.append(gap)
                    insort(ordered, gap)
                    average = 0.5 * (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2])
                early, late = _BURST_RR * average, _SEARCH_BACK_FACTOR * average
                spk = 0.125 * height + 0.875 * spk
                threshold = npk + share * (spk - npk)
                slope_level = 0.125 * slope + 0.875 * slope_level
                early_slope, t_slope = self._early_slope * slope_level, 0.25 * slope
                last, last_index = candidate, index
                accepted.append(candidate)
                since = []
        # Noise humps since the last beat, for search-back: the latest few (bounded).
        del since[:-_MAX_PENDING]
        self._spk, self._npk, self._last_beat, self._since_beat = spk, npk, last, since
        self._rr_average = average
        if last is not None:
            self._slope_level = slope_level

    def _placements(self, at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """R-peak index for humps at input indices ``at`` (ascending, their windows held): the
        largest deflection in the input window before each (vectorised)."""
        starts = at - self._refine
        placed: npt.NDArray[np.int64] = np.maximum(
            starts + self._deflections(starts, self._refine + 1), 0)
        return placed

    def _place_accepted(self) -> list[int]:
        """Place the beats accepted by this push; return their R-peak indices (ascending)."""
        accepted, self._accepted = self._accepted, []
        searched, self._searched_back = self._searched_back, []
        at = np.fromiter(map(itemgetter(0), accepted), dtype=np.int64, count=len(accepted))
        # A beat found by search-back may have been placed already, before its samples went.
        if any(accepted[i][2] != _UNPLACED for i in searched):
            placed = np.array([c[2] for c in accepted], dtype=np.int64)
            todo = placed == _UNPLACED
            if todo.any():
                placed[todo] = self._placements(at[todo])
        else:
            placed = self._placements(at)
        refractory = self._refractory
        previous = -(2**62) if self._last_peak is None else self._last_peak
        before = np.concatenate(([previous], placed[:-1]))
        # Rare: a beat too close to the previous one (very fast rhythms, or one found by
        # search-back, or a candidate placed before its samples went) is placed again, beat by
        # beat; so is the beat after one whose place changed.
        clash = (at - self._refine <= before + refractory) | (placed <= before)
        vectorised: list[int] = placed.tolist()
        peaks = vectorised.copy()
        suspects = sorted({*np.flatnonzero(clash).tolist(), *searched})
        count, next_suspect = len(peaks), 0
        position = suspects[0] if suspects else count
        while position < count:
            candidate = accepted[position]
            peak = candidate[2] if candidate[2] != _UNPLACED else vectorised[position]
            if position or self._last_peak is not None:
                previous = peaks[position - 1] if position else previous
                if position not in searched and candidate[0] - self._refine <= previous + refractory:
                    # Keep the previous beat out of the placement window.
                    peak = self._place_after(previous + refractory, candidate[0])
                if peak <= previous:
                    peak = previous + 1
            peaks[position] = peak
            while next_suspect < len(suspects) and suspects[next_suspect] <= position:
                next_suspect += 1
            if peak != vectorised[position]:
                position += 1
            else:
                position = suspects[next_suspect] if next_suspect < len(suspects) else count
        self._last_peak = peaks[-1]
        return peaks

    def _place_aging(self, keep_from: int) -> None:
        """Place the noise humps (possible search-back beats) whose window the held samples are
        about to lose; rare: a beat usually comes first and clears them."""
        since = self._since_beat
        if since[0][0] - self._refine >= keep_from:  # ascending: none is aging
            return
        aging = [c for c in since if c[0] - self._refine < keep_from and c[2] == _UNPLACED]
        if not aging:
            return
        places = dict(zip((c[0] for c in aging), self._placements(np.array([c[0] for c in aging])).tolist(),
                          strict=True))
        self._since_beat = [(c[0], c[1], places[c[0]], c[3], c[4]) if c[0] in places else c for c in since]

    def _place_after(self, first: int, index: int) -> int:
        return first + int(self._deflections(np.array([first]), index + 1 - first)[0])

    def _ecg_sources(self, starts: npt.NDArray[np.int64],
                     width: int) -> list[tuple[npt.NDArray[np.float64], int, slice]]:
        """Where the held input windows ``[start, start + width)`` (ascending absolute starts) are:
        (samples, absolute index of their first, which of the starts), one or two of them."""
        chunk, chunk_start = self._chunk, self._count - self._chunk.size
        if starts[0] >= chunk_start:
            return [(chunk, chunk_start, slice(None))]
        if starts[0] < self._tail_start:
            raise LookupError(f"input sample {int(starts[0])} is no longer held")
        if chunk.size <= _JOIN_SAMPLES:
            # A short chunk: one joined copy costs least.
            return [(np.concatenate((self._tail, chunk)), self._tail_start, slice(None))]
        split = int(np.searchsorted(starts, chunk_start))
        return [(np.concatenate((self._tail, chunk[:width])), self._tail_start, slice(None, split)),
                (chunk, chunk_start, slice(split, None))]

    def _ecg_rows(self, starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.float64]:
        """Input samples ``[start, start + width)`` for ascending absolute starts, as rows (all held)."""
        parts = [rows(source, starts[part] - source_start, width)
                 for source, source_start, part in self._ecg_sources(starts, width)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _search_back(self) -> bool:
        threshold = 0.5 * (self._npk + self._threshold * (self._spk - self._npk))
        last = self._last_beat
        eligible = [
            c for c in self._since_beat
            if c[1] > threshold and (last is None or c[0] - last[0] >= self._refractory)
        ]
        if not eligible:
            return False
        best = max(eligible, key=lambda c: c[1])
        self._spk = 0.25 * best[1] + 0.75 * self._spk
        self._accept(best, searched_back=True)
        return True

    def _accept(self, candidate: _Candidate, *, searched_back: bool = False) -> None:
        last = self._last_beat
        if last is not None:
            rr, ordered = self._rr, self._rr_ordered
            if len(rr) == 8:
                ordered.remove(rr.pop(0))
            rr.append(candidate[0] - last[0])
            insort(ordered, rr[-1])
            self._rr_average = 0.5 * (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2])
        self._last_beat = candidate
        self._slope_level = 0.125 * candidate[3] + 0.875 * self._slope_level
        if searched_back:
            # A beat found by search-back leaves the noise humps after it in play.
            self._since_beat = [c for c in self._since_beat if c[0] > candidate[0]]
        else:
            self._since_beat = []
        if searched_back:
            self._searched_back.append(len(self._accepted))
        self._accepted.append(candidate)

    @property
    def settled(self) -> int:
        """Absolute input index below which no later push returns a peak: every peak is placed at
        most ``_refine`` samples before its hump, and humps still to come or still in play (waiting
        for the gate, for the levels, or for search-back) are all known."""
        low = self._next * self._factor
        for held in (self._waiting, self._since_beat, self._learning):
            if held:
                low = min(low, held[0][0])
        low -= self._refine
        return low if self._last_peak is None else max(low, self._last_peak + 1)

    @property
    def count(self) -> int:
        """Input samples seen."""
        return self._count

    @property
    def last_input(self) -> float:
        """The latest input sample (0 before any)."""
        return self._last_input


class RPeakDetector:
    """Streaming R-peak detector for one ECG lead sampled at ``fs`` Hz.

    ``push(chunk)`` takes the next samples (mV, or any unit) and returns the absolute sample
    indices (counted from the first sample ever pushed) of R peaks confirmed by this chunk, in
    ascending order. With ``prefiltered=True`` the input is taken as already band-passed
    (0.5-40 Hz, baseline removed) and peaks go on its largest absolute deflection; otherwise on the
    largest deflection from the local baseline. Memory is bounded.

    Two envelopes run side by side: the QRS band (10-25 Hz), robust against motion, finds the
    beats; a wider band (6-25 Hz) finds wide ventricular beats as well, whose slopes lie mostly
    below 10 Hz. A beat only the wide band finds is taken when it lies outside a motion burst, at
    least 200 ms from every beat of the QRS band, inside a pause of the QRS band's beats (an
    interval at least 1.2 typical RR intervals of the beats so far): where a
    premature beat was missed, the compensatory pause is left (and at least 0.35 typical RR
    intervals from each beat around it). Peaks are confirmed about 0.3-1 s
    after they occur (longer when a missed beat is recovered by search-back); the two envelopes
    settle their beats in order, so chunks never change the result.
    """

    def __init__(self, fs: float, *, prefiltered: bool = False) -> None:
        if not fs > 20.0:
            raise ValueError("R-peak detection needs a sampling rate above 20 Hz")
        self.fs = float(fs)
        self._qrs = _EnergyDetector(fs, prefiltered=prefiltered, band_hz=_QRS_BAND_HZ, threshold=_THRESHOLD,
                                    early_slope=_EARLY_SLOPE, gate_blocks=_GATE_BLOCKS)
        self._wide = _EnergyDetector(fs, prefiltered=prefiltered, band_hz=_WIDE_BAND_HZ, threshold=_WIDE_THRESHOLD,
                                     early_slope=_WIDE_EARLY_SLOPE, gate_blocks=_WIDE_GATE_BLOCKS)
        self._apart = round(_REFRACTORY_S * fs)
        self._beats: list[int] = []  # QRS-band beats not yet released (ascending)
        # Wide-band beats waiting for the QRS band: (index, in a motion burst).
        self._pending: list[tuple[int, bool]] = []
        self._ready: list[int] = []  # wide-band beats taken, waiting for the earlier beats to be released
        self._released: list[int] = []  # the last 9 beats released (8 RR intervals)

    @property
    def held_samples(self) -> int:
        """Samples (and beats) held in internal buffers (bounded)."""
        return (self._qrs.held_samples + self._wide.held_samples + len(self._beats) + len(self._pending)
                + len(self._ready) + len(self._released))

    def push(self, chunk: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Feed the next samples; return absolute indices of newly confirmed R peaks."""
        self._take(self._qrs.push(chunk), self._wide.push(chunk), self._wide.bursts)
        return self._release(final=False)

    def _take(self, beats: npt.NDArray[np.int64], wide: npt.NDArray[np.int64], bursts: list[bool]) -> None:
        self._beats += beats.tolist()
        self._pending += zip(wide.tolist(), bursts, strict=True)

    def _release(self, *, final: bool) -> npt.NDArray[np.int64]:
        """Decide the wide-band beats whose neighbourhood the QRS band has settled; return the beats
        that no later decision can precede."""
        qrs_settled = self._qrs.settled
        pending, beats, apart = self._pending, self._beats, self._apart
        decided = 0
        for peak, burst in pending:
            later = bisect_right(beats, peak)
            # One the QRS band has found already (the usual case) is decided at once.
            known = (later < len(beats) and beats[later] - peak <= apart) or (
                later > 0 and peak - beats[later - 1] <= apart) or (
                not later and self._released and peak - self._released[-1] <= apart)
            if known:
                decided += 1
                continue
            unsettled = later + 1 >= len(beats) or qrs_settled <= peak + apart
            if not final and unsettled and len(pending) - decided <= _PENDING_WIDE:
                break  # the QRS band may still place a beat near it, or the pause is not closed
            decided += 1
            # The typical RR interval of the beats so far (those of the QRS band and those taken
            # from the wide band): in bigeminy the QRS band alone may see only every other beat.
            so_far = sorted(self._released + beats[:later] + [b for b in self._ready if b < peak])[-9:]
            if len(so_far) < 4:
                continue
            typical = float(np.median(np.diff(so_far)))
            before = so_far[-1]
            # At the end of a record the pause runs to the last sample.
            end = self._qrs.count if final else None
            after = beats[later] if later < len(beats) else end
            near = max(apart, _APART_RR * typical)
            if burst or after is None or peak - before <= near or after - peak <= near:
                continue
            if after - before < _PAUSE_RR * typical:
                # The first of a couplet, when the QRS band took the second: the pause comes after
                # that one (the sinus beats around a couplet are three cycles apart).
                following = beats[later + 1] if later + 1 < len(beats) else end
                if (following is None or after - before < _COUPLET_RR * typical
                        or following - before < _COUPLET_PAUSE_RR * typical):
                    continue
            insort(self._ready, peak)
        del pending[:decided]
        # Everything before the first undecided wide-band beat, and before any wide-band beat still
        # to come, is final.
        horizon = 2**62 if final else min(self._wide.settled, pending[0][0] if pending else 2**62)
        out = [b for b in beats if b < horizon]
        del beats[:len(out)]
        ready = self._ready
        extra = [b for b in ready if b < horizon]
        del ready[:len(extra)]
        if extra:
            out = sorted(out + extra)
        if out:
            self._released = (self._released + out)[-9:]
        return np.array(out, dtype=np.int64)

    def finish(self) -> npt.NDArray[np.int64]:
        """Flush the end of a record: judge the last samples (by holding the last value 1 s)."""
        if self._qrs.count == 0:
            return np.zeros(0, dtype=np.int64)
        end = self._qrs.count
        filler = np.full(round(1.0 * self.fs), self._qrs.last_input)
        self._take(self._qrs.push(filler), self._wide.push(filler), self._wide.bursts)
        tail = self._release(final=True)
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
    # What ``push(x)`` then ``finish()`` give (chunks do not matter), in one push: a second one
    # would cost as much as a long stretch of signal.
    padded = np.empty(x.size + round(detector.fs))
    padded[:x.size] = x
    padded[x.size:] = x[-1]
    detector._take(detector._qrs.push(padded), detector._wide.push(padded), detector._wide.bursts)
    peaks = detector._release(final=True)  # strictly increasing, never negative
    return peaks[peaks < x.size]
