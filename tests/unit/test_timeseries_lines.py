"""Batch -> InfluxDB line protocol: measurements, tag escaping, exact float text."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.timeseries import batch_to_lines, escape_tag
from vitals.samples import Batch, Stream


def test_escape_tag() -> None:
    assert escape_tag("plain-id_1.2") == "plain-id_1.2"
    assert escape_tag("a,b=c d") == r"a\,b\=c\ d"
    assert escape_tag("") == ""


def test_numeric_and_waveform_lines() -> None:
    batch = Batch("gw", 1, "pt-1", "dev.1", "prof", (
        Stream("spo2", "%", [10, 20], [97.0, 0.1], [0, 3]),
        Stream.regular("ecg", "mV", 1_000, 250.0, [-0.001, 1e-05], scale=None),
    ))
    assert batch_to_lines(batch) == [
        "vitals,device=dev.1,metric=spo2,patient=pt-1 value=97.0,quality=0i 10",
        "vitals,device=dev.1,metric=spo2,patient=pt-1 value=0.1,quality=3i 20",
        "waveforms,device=dev.1,metric=ecg,patient=pt-1 value=-0.001,quality=0i 1000",
        "waveforms,device=dev.1,metric=ecg,patient=pt-1 value=1e-05,quality=0i 4001000",
    ]


def test_empty_batch_has_no_lines() -> None:
    assert batch_to_lines(Batch("gw", 1, "p", "d", "prof", ())) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_float_text_is_exact(values: list[float]) -> None:
    times = np.arange(len(values), dtype=np.int64) * 1000 + 1
    batch = Batch("gw", 1, "p", "d", "prof", (Stream("heart_rate", "/min", times, values, [0] * len(values)),))
    lines = batch_to_lines(batch)
    assert len(lines) == len(values)
    for line, value, time in zip(lines, values, times.tolist(), strict=True):
        series, fields, stamp = line.split(" ")
        assert series == "vitals,device=d,metric=heart_rate,patient=p"
        value_text, quality_text = fields.split(",")
        assert value_text.startswith("value=") and quality_text == "quality=0i"
        parsed = float(value_text.removeprefix("value="))
        assert struct.pack("<d", parsed) == struct.pack("<d", value)  # bit-exact, sign of zero included
        assert "." in value_text or "e" in value_text  # a float field, never read as an integer
        assert int(stamp) == time
