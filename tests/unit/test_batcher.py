"""StreamCollector: merging irregular streams, keeping regular ones, splitting over the wire limits."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.batcher import StreamCollector
from vitals.codec import MAX_STREAMS, MAX_VALUES_PER_STREAM, decode_batch, encode_batch
from vitals.samples import Batch, Stream

S = 10**9


def _numeric(metric: str, unit: str, times: list[int], values: list[float], quality: list[int] | None = None
             ) -> Stream:
    return Stream(metric, unit, times, values, quality if quality is not None else [0] * len(times))


def test_empty_collector_gives_no_batches() -> None:
    collector = StreamCollector()
    collector.add(_numeric("spo2", "%", [], []))
    assert collector.value_count == 0
    assert collector.take() == []


def test_irregular_streams_of_a_metric_are_merged_sorted_and_deduplicated() -> None:
    collector = StreamCollector()
    collector.add(_numeric("spo2", "%", [3 * S, 5 * S], [95.0, 94.0], [0, 1]))
    collector.add(_numeric("spo2", "%", [1 * S, 3 * S, 4 * S], [97.0, 11.0, 96.0], [0, 2, 0]))
    collector.add(_numeric("heart_rate", "/min", [2 * S], [70.0]))
    assert collector.value_count == 6
    [streams] = collector.take()
    assert streams == [
        _numeric("heart_rate", "/min", [2 * S], [70.0]),
        # The first of two equal timestamps is kept (the one added first).
        _numeric("spo2", "%", [1 * S, 3 * S, 4 * S, 5 * S], [97.0, 95.0, 96.0, 94.0], [0, 0, 0, 1]),
    ]
    assert collector.duplicates == 1
    assert collector.value_count == 0
    assert collector.take() == []


def test_regular_streams_are_kept_as_they_are_after_the_irregular_ones() -> None:
    collector = StreamCollector()
    ecg = Stream.regular("ecg", "mV", 0, 250.0, np.arange(10) * 0.001, scale=0.001)
    collector.add(ecg)
    collector.add(_numeric("spo2", "%", [S], [97.0]))
    [streams] = collector.take()
    assert streams == [_numeric("spo2", "%", [S], [97.0]), ecg]


def test_long_streams_are_split_and_stay_strictly_increasing() -> None:
    collector = StreamCollector(max_values=4)
    collector.add(_numeric("spo2", "%", [9, 1, 5, 3, 7, 2, 8, 4, 6, 10], [float(v) for v in range(10)]))
    [streams] = collector.take()
    assert [s.times_ns.tolist() for s in streams] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert all(len(s) <= 4 for s in streams)


def test_regular_split_keeps_rate_and_scale() -> None:
    collector = StreamCollector(max_values=100)
    ecg = Stream.regular("ecg", "mV", 10**18, 250.0, np.arange(250) * 0.001, scale=0.001)
    collector.add(ecg)
    [streams] = collector.take()
    assert [len(s) for s in streams] == [100, 100, 50]
    assert all(s.rate_hz == 250.0 and s.scale == 0.001 for s in streams)
    assert np.array_equal(np.concatenate([s.times_ns for s in streams]), ecg.times_ns)
    assert np.array_equal(np.concatenate([s.values for s in streams]), ecg.values)
    # Every piece is still a valid regular stream on the wire.
    for piece in streams:
        assert decode_batch(encode_batch(Batch("gw", 1, "p", "d", "prof", (piece,)))).streams[0] == piece


def test_more_streams_than_the_wire_allows_become_several_batches() -> None:
    collector = StreamCollector()
    for i in range(MAX_STREAMS + 5):
        collector.add(Stream.regular("ppg", "1", i * S, 100.0, [1.0, 2.0]))
    batches = collector.take()
    assert [len(b) for b in batches] == [MAX_STREAMS, 5]


def test_default_limit_is_the_wire_limit() -> None:
    assert StreamCollector().max_values == MAX_VALUES_PER_STREAM


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 50), st.floats(40, 100)), min_size=1, max_size=15),
                min_size=1, max_size=5),
       st.integers(1, 10))
def test_merged_output_always_encodes(parts: list[list[tuple[int, float]]], max_values: int) -> None:
    collector = StreamCollector(max_values=max_values)
    for part in parts:
        collector.add(_numeric("spo2", "%", [t for t, _ in part], [v for _, v in part]))
    batches = collector.take()
    distinct = {t for part in parts for t, _ in part}
    kept = [t for streams in batches for s in streams for t in s.times_ns.tolist()]
    assert kept == sorted(distinct)
    assert collector.duplicates == sum(len(p) for p in parts) - len(distinct)
    for streams in batches:
        assert all(len(s) <= max_values for s in streams)
        batch = Batch("gw", 1, "p", "d", "prof", tuple(streams))
        assert decode_batch(encode_batch(batch)) == batch
