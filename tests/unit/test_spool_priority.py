"""Which batches the spool may drop at its quota: waveforms, then routine numerics, never alert readings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pipeline.thresholds import DEFAULT_THRESHOLDS, Thresholds
from edge.priority import SPOT_METRICS, SpoolPriority, batch_priority, stream_priority
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import Batch, Stream


def _numeric(metric: str, *values: float) -> Stream:
    return Stream(metric, CATALOGUE[metric].unit, [10**18 + i * 10**9 for i in range(len(values))], list(values),
                  [0] * len(values))


def _batch(*streams: Stream) -> Batch:
    return Batch("gw", 0, "p", "d", "prof", streams)


_ECG = Stream.regular("ecg", "mV", 10**18, 250.0, np.zeros(250))


def test_waveforms_routine_numerics_and_alert_readings() -> None:
    assert stream_priority(_ECG) is SpoolPriority.WAVEFORM
    assert stream_priority(_numeric("spo2", 97, 96, 95)) is SpoolPriority.ROUTINE
    assert stream_priority(_numeric("spo2", 97, 89, 95)) is SpoolPriority.ALERT  # below 90 %
    assert stream_priority(_numeric("heart_rate", 60, 131)) is SpoolPriority.ALERT
    assert stream_priority(_numeric("heart_rate", 40, 130)) is SpoolPriority.ROUTINE  # on the band's edges
    assert stream_priority(_numeric("rr_interval", 800, 810)) is SpoolPriority.ROUTINE  # no alert band
    assert stream_priority(_numeric("body_weight", 80.0)) is SpoolPriority.ALERT  # a spot measurement


@pytest.mark.parametrize("metric", sorted(SPOT_METRICS))
def test_every_spot_measurement_is_kept_whatever_its_value(metric: str) -> None:
    low, high = CATALOGUE[metric].plausible
    assert stream_priority(_numeric(metric, (low + high) / 2)) is SpoolPriority.ALERT


def test_a_batch_is_as_important_as_its_most_important_stream() -> None:
    assert batch_priority(_batch(_ECG)) is SpoolPriority.WAVEFORM
    assert batch_priority(_batch(_ECG, _numeric("spo2", 97))) is SpoolPriority.ROUTINE
    assert batch_priority(_batch(_ECG, _numeric("spo2", 97), _numeric("spo2", 80))) is SpoolPriority.ALERT
    assert batch_priority(_batch()) is SpoolPriority.ALERT


def test_thresholds_can_be_given() -> None:
    tight = {"spo2": Thresholds(96.0, None)}
    assert stream_priority(_numeric("spo2", 95), tight) is SpoolPriority.ALERT
    assert stream_priority(_numeric("heart_rate", 200), tight) is SpoolPriority.ROUTINE  # no band given


@settings(max_examples=200, deadline=None)
@given(metric=st.sampled_from(sorted(m for m in CATALOGUE if CATALOGUE[m].kind is MetricKind.NUMERIC)),
       data=st.data())
def test_a_numeric_reading_beyond_its_threshold_is_never_droppable(metric: str, data: st.DataObject) -> None:
    low, high = CATALOGUE[metric].plausible
    values = data.draw(st.lists(st.floats(low, high), min_size=1, max_size=20))
    band = DEFAULT_THRESHOLDS.get(metric, (None, None))
    crossing = any((band[0] is not None and v < band[0]) or (band[1] is not None and v > band[1]) for v in values)
    priority = stream_priority(_numeric(metric, *values))
    assert (priority is SpoolPriority.ALERT) == (crossing or metric in SPOT_METRICS)
    assert priority is not SpoolPriority.WAVEFORM
