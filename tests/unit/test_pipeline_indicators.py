"""HRV, AF irregularity and signal quality leave the gateway as catalogue metrics in the batches."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pipeline import Pipeline, pipeline_problems
from tests.unit._pipeline_signals import synthetic_ecg, synthetic_ppg
from vitals import Batch, Stream, check_density, check_plausible, decode_batch, encode_batch

T0 = 1_700_000_000_000_000_000
FS = 250.0
_INDICATORS = ("ecg_sqi", "hrv_sdnn", "hrv_rmssd", "af_irregularity")


def _run(signal: np.ndarray, cuts: list[int], config: dict[str, object] | None = None) -> list[Stream]:
    pipeline = Pipeline(config)
    out: list[Stream] = []
    edges = [0, *sorted(set(c for c in cuts if 0 < c < signal.size)), signal.size]
    for first, last in itertools.pairwise(edges):
        out += pipeline.process(Stream.regular("ecg", "mV", T0 + round(first * 1e9 / FS), FS, signal[first:last]))
    return out


def _series(out: list[Stream], metric: str) -> list[tuple[int, float, int]]:
    return [row for s in out if s.metric == metric
            for row in zip(s.times_ns.tolist(), s.values.tolist(), s.quality.tolist(), strict=True)]


_ECG, _ = synthetic_ecg(150.0, FS, rr_s=0.8, rr_jitter_s=0.05, seed=3)
_WHOLE = _run(_ECG, [])


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, _ECG.size - 1), max_size=40))
def test_indicators_do_not_depend_on_how_the_ecg_is_chunked(cuts: list[int]) -> None:
    chunked = _run(_ECG, cuts)
    for metric in (*_INDICATORS, "rr_interval"):
        assert _series(chunked, metric) == _series(_WHOLE, metric), metric


def test_indicators_travel_in_a_batch_the_cloud_accepts() -> None:
    streams = [s for s in _WHOLE if s.metric in _INDICATORS]
    by_metric = {m: _series(streams, m) for m in _INDICATORS}
    assert len(by_metric["ecg_sqi"]) == 30  # one per 5 s window
    # 32 intervals (about 26 s) first, then one per minute of the clock: at most 150 / 60 + 2.
    assert 2 <= len(by_metric["hrv_sdnn"]) <= 4
    assert [t for t, _v, _q in by_metric["hrv_sdnn"]] == [t for t, _v, _q in by_metric["af_irregularity"]]
    batch = Batch("gw-1", 1, "patient-1", "ecg-1", "generic.ecg_patch", tuple(streams))
    decoded = decode_batch(encode_batch(batch))
    assert {s.metric for s in decoded.streams} == set(_INDICATORS)
    for metric in _INDICATORS:
        assert _series(list(decoded.streams), metric) == by_metric[metric]
    assert check_plausible(decoded, now_ns=T0 + 10**12) == []
    assert check_density(decoded) == []


def test_sinus_rhythm_stays_below_and_an_irregular_rhythm_above_the_af_threshold() -> None:
    regular = _series(_WHOLE, "af_irregularity")
    assert regular and all(v < 0.08 for _t, v, _q in regular)
    chaotic, _ = synthetic_ecg(150.0, FS, rr_s=0.75, rr_jitter_s=0.3, seed=5)
    irregular = _series(_run(chaotic, []), "af_irregularity")
    assert irregular and all(v > 0.08 for _t, v, _q in irregular)
    sdnn_regular = max(v for _t, v, _q in _series(_WHOLE, "hrv_sdnn"))
    sdnn_chaotic = min(v for _t, v, _q in _series(_run(chaotic, []), "hrv_sdnn"))
    assert sdnn_chaotic > 3 * sdnn_regular


def test_a_noisy_ecg_has_a_low_sqi_and_flagged_hrv() -> None:
    noisy = _ECG + np.random.default_rng(0).normal(0, 0.6, _ECG.size)
    out = _run(noisy, [])
    assert max(v for _t, v, _q in _series(out, "ecg_sqi")) < 0.5
    assert all(q != 0 for _t, _v, q in _series(out, "hrv_sdnn"))


def test_the_interval_between_hrv_readings_is_an_option() -> None:
    often = _run(_ECG, [], {"ecg": {"indicator_interval_s": 10}})
    times = [t for t, _v, _q in _series(often, "hrv_sdnn")]
    assert len(times) >= 10
    assert all(b // 10**10 > a // 10**10 for a, b in itertools.pairwise(times))  # one per 10 s slot


def test_ppg_sends_its_signal_quality() -> None:
    fs = 100.0
    ppg = synthetic_ppg(30.0, fs, period_s=0.75)
    out = Pipeline().process(Stream.regular("ppg", "1", T0, fs, ppg))
    sqi = _series(out, "ppg_sqi")
    assert len(sqi) == 6 and all(v > 0.9 for _t, v, _q in sqi)
    assert not _series(out, "hrv_sdnn")  # pulse intervals are not RR intervals


def test_sqi_windows_under_a_second_and_a_stray_interval_are_config_errors() -> None:
    problems = pipeline_problems({"ecg": {"sqi_window_s": 0.5}, "ppg": {"indicator_interval_s": 30}},
                                 file="gateway.yaml")
    text = "\n".join(str(p) for p in problems)
    assert "sqi_window_s" in text and "indicator_interval_s" in text
