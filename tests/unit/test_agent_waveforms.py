"""Waveform samples decoded one by one reach the pipeline as a regular stream."""

from __future__ import annotations

import numpy as np

from edge.agent import as_regular
from edge.pipeline import Pipeline
from vitals.samples import Sample, Stream


def _ppg(start_ns: int, count: int, period_ns: float, jitter_ns: int = 0) -> Stream:
    samples = [Sample("ppg", start_ns + round(i * period_ns) + (jitter_ns if i == count // 2 else 0), float(i % 7))
               for i in range(count)]
    return Stream.from_samples("ppg", "1", samples)


def test_evenly_spaced_samples_become_a_regular_stream_with_their_rate() -> None:
    stream = as_regular(_ppg(10**18, 25, 1e9 / 75))
    assert stream.rate_hz is not None
    assert abs(stream.rate_hz - 75.0) < 1e-6
    assert np.max(np.abs(stream.times_ns - _ppg(10**18, 25, 1e9 / 75).times_ns)) <= 1
    assert np.array_equal(stream.values, _ppg(10**18, 25, 1e9 / 75).values)


def test_uneven_or_single_samples_stay_irregular() -> None:
    assert as_regular(_ppg(10**18, 25, 1e9 / 75, jitter_ns=50_000)).rate_hz is None
    assert as_regular(_ppg(10**18, 1, 1e9 / 75)).rate_hz is None


def test_a_regularised_pleth_passes_the_pipeline_instead_of_being_rejected() -> None:
    pipeline = Pipeline()
    sent = 0
    for packet in range(60):
        for out in pipeline.process(as_regular(_ppg(10**18 + packet * 25 * 10**9 // 75, 25, 1e9 / 75))):
            if out.metric == "ppg":
                sent += len(out)
    assert sent > 0
    assert not any("not_regular" in key and value for key, value in pipeline.counters.items())
