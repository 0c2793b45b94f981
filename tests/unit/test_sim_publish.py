"""Scenario chunks -> wire batches (`sim run --mode direct`) and the virtual-home device list."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.publish import ScenarioBatcher, numeric_stream, split_stream, waveform_stream
from simulators.scenarios import Chunk, load_scenario, parse_scenario
from vitalbridge.home import home_devices
from vitals.codec import decode_batch, encode_batch
from vitals.samples import Batch, Stream

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def test_numeric_stream_sorts_and_keeps_the_first_reading_of_each_instant() -> None:
    stream = numeric_stream("spo2", [T0 + 2, T0 + 1, T0 + 3, T0 + 1, T0 + 2], [97.0, 96.0, 95.0, 99.0, 98.0])
    assert stream == Stream("spo2", "%", np.array([T0 + 1, T0 + 2, T0 + 3]), np.array([96.0, 97.0, 95.0]),
                            np.zeros(3, dtype=np.uint8))


def test_numeric_stream_of_nothing_is_none() -> None:
    assert numeric_stream("spo2", [], []) is None
    assert waveform_stream("ecg", T0, 250.0, []) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=40))
def test_numeric_stream_times_strictly_increase_and_cover_every_instant(readings: list[tuple[int, float]]) -> None:
    times = [T0 + t for t, _ in readings]
    stream = numeric_stream("spo2", times, [v for _, v in readings])
    assert stream is not None
    assert np.all(np.diff(stream.times_ns) > 0)
    assert stream.times_ns.tolist() == sorted(set(times))
    first: dict[int, float] = {}
    for t, v in zip(times, (v for _, v in readings), strict=True):
        first.setdefault(t, v)
    assert stream.values.tolist() == [first[t] for t in stream.times_ns.tolist()]
    assert decode_batch(encode_batch(Batch("gw", 0, "p", "d", "generic.x", (stream,)))).streams == (stream,)


def test_waveform_stream_is_quantised_and_travels_losslessly_as_integers() -> None:
    stream = waveform_stream("ecg", T0, 250.0, [0.0, 0.0012, -0.4996, 1.23449])
    assert stream is not None
    assert stream.scale == 0.001
    assert stream.rate_hz == 250.0
    assert stream.values.tolist() == [0.0, 0.001, -0.5, 1.234]
    batch = ScenarioBatcher(load_scenario("af_stable"), "gw").batches(
        _chunk_with_wave("ecg", T0, 250.0, np.linspace(-1.0, 1.0, 500)))[0]
    payload = encode_batch(batch)
    assert b"\x63enc\x62dz" in payload  # the integer encoding, not float64
    assert decode_batch(payload) == batch


def _chunk_with_wave(metric: str, start: int, fs: float, values: npt.NDArray[np.float64]) -> Chunk:
    return Chunk(T0, T0 + 10**9, {}, {metric: (start, fs, values)})


def test_split_stream_cuts_regular_and_irregular_streams_into_consecutive_pieces() -> None:
    wave = Stream.regular("ppg", "1", T0, 100.0, np.arange(10.0), scale=1.0)
    pieces = split_stream(wave, 4)
    assert [len(p) for p in pieces] == [4, 4, 2]
    assert [int(p.times_ns[0]) for p in pieces] == [T0, T0 + 40_000_000, T0 + 80_000_000]
    assert np.concatenate([p.values for p in pieces]).tolist() == list(np.arange(10.0))
    assert all(p.rate_hz == 100.0 and p.scale == 1.0 for p in pieces)
    readings = Stream("spo2", "%", T0 + np.arange(5), np.arange(5.0), np.zeros(5, dtype=np.uint8))
    assert [p.times_ns.tolist() for p in split_stream(readings, 2)] == [[T0, T0 + 1], [T0 + 2, T0 + 3], [T0 + 4]]
    assert split_stream(readings, 5) == [readings]
    with pytest.raises(ValueError):
        split_stream(readings, 0)


def test_batcher_makes_one_batch_per_device_with_consecutive_sequence_numbers() -> None:
    scenario = load_scenario("heart_failure_stable")
    run = scenario.start(T0, seed=3, waveforms=True)
    batcher = ScenarioBatcher(scenario, "sim-gw", next_seq=100)
    chunk = run.advance(30.0)
    batches = batcher.batches(chunk)
    assert [b.seq for b in batches] == list(range(100, 100 + len(batches)))
    assert batcher.next_seq == 100 + len(batches)
    by_device = {b.device: b for b in batches}
    assert len(by_device) == len(batches)
    for device in scenario.devices:
        metrics = {s.metric for s in by_device[device.id].streams} if device.id in by_device else set()
        produced = {m for m in device.metrics if m in chunk.waveforms or len(chunk.numerics.get(m, ((),))[0])}
        assert metrics == produced
        if device.id in by_device:
            assert by_device[device.id].profile == device.profile
    for batch in batches:
        assert batch.patient == scenario.patient.id and batch.gateway == "sim-gw"
        assert decode_batch(encode_batch(batch)) == batch
    expected = sum(len(np.unique(t)) for t, _ in chunk.numerics.values()) + sum(
        len(v) for _, _, v in chunk.waveforms.values())
    assert sum(b.sample_count for b in batches) == expected
    assert {b.epoch for b in batches} == {""}  # no epoch given: a gateway from before epochs


def test_batcher_puts_its_epoch_in_every_batch() -> None:
    scenario = load_scenario("heart_failure_stable")
    batches = ScenarioBatcher(scenario, "sim-gw", epoch="0a1b2c3d4e5f6071").batches(
        scenario.start(T0, seed=3).advance(30.0))
    assert batches and {b.epoch for b in batches} == {"0a1b2c3d4e5f6071"}
    assert {decode_batch(encode_batch(b)).epoch for b in batches} == {"0a1b2c3d4e5f6071"}


def test_batcher_drops_duplicated_readings_and_orders_late_ones() -> None:
    scenario = parse_scenario({
        "name": "faulty", "description": "duplicates and late readings", "duration": "1h",
        "patient": {"id": "p-1", "age": 60},
        "devices": [{"id": "ox", "kind": "pulse_oximeter", "profile": "generic.pulse_oximeter",
                     "metrics": ["spo2"], "interval": "1s",
                     "imperfections": {"duplicate_prob": 0.3, "late_prob": 0.2, "late_delay": "20s"}}],
    })
    run = scenario.start(T0, seed=1)
    batcher = ScenarioBatcher(scenario, "gw")
    chunk = run.advance(600.0)
    times, _ = chunk.numerics["spo2"]
    assert len(np.unique(times)) < len(times)  # the scenario did duplicate some
    assert np.any(np.diff(times) < 0)  # and delivered some late
    (batch,) = batcher.batches(chunk)
    (stream,) = batch.streams
    assert stream.times_ns.tolist() == sorted(set(times.tolist()))
    assert decode_batch(encode_batch(batch)) == batch


def test_batcher_splits_what_exceeds_max_values() -> None:
    scenario = load_scenario("af_stable")
    batcher = ScenarioBatcher(scenario, "gw", max_values=1000)
    chunk = scenario.start(T0, seed=0, waveforms=True).advance(10.0)
    batches = batcher.batches(chunk)
    assert all(b.sample_count <= 1000 for b in batches)
    ecg = [s for b in batches for s in b.streams if s.metric == "ecg"]
    assert sum(len(s) for s in ecg) == len(chunk.waveforms["ecg"][2])
    assert all(decode_batch(encode_batch(b)) == b for b in batches)


def test_home_devices_wires_every_kind_with_a_virtual_device_and_warns_about_the_rest() -> None:
    scenario = load_scenario("copd_deteriorating")
    devices, warnings = home_devices(scenario, address="copd_deteriorating", seed=7)
    assert [(d.id, d.patient, d.profile, d.transport, d.address, d.options["kind"]) for d in devices] == [
        ("oximeter", scenario.patient.id, "nonin.xpod", "virtual", "copd_deteriorating", "pulse_oximeter"),
        ("thermometer", scenario.patient.id, "generic.thermometer", "virtual", "copd_deteriorating", "thermometer"),
        ("strap", scenario.patient.id, "generic.heart_rate_strap", "virtual", "copd_deteriorating",
         "heart_rate_strap"),
        ("cuff", scenario.patient.id, "generic.bp_cuff", "virtual", "copd_deteriorating", "bp_cuff"),
    ]
    assert warnings == ["warning: device strap: the virtual heart_rate_strap (generic.heart_rate_strap) sends "
                        "heart_rate; not respiratory_rate"]
    af = load_scenario("af_stable")
    devices, warnings = home_devices(af, address="af_stable", seed=7)
    assert [d.id for d in devices] == ["patch", "oximeter", "cuff"]  # the ECG patch streams the scenario's ECG
    assert warnings == ["warning: device patch: the virtual ecg_patch (generic.ecg_patch) sends ecg; not heart_rate"]
