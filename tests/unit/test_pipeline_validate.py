"""Validation, lead checks and spike removal stages."""

from __future__ import annotations

import numpy as np

from edge.pipeline import StreamPipeline
from vitals import CATALOGUE, Quality, Stream

T0 = 1_700_000_000 * 10**9
SECOND = 10**9


def _stage(metric: str, name: str, **options: object) -> StreamPipeline:
    return StreamPipeline.for_metric(metric, {"stages": [name], **options})


def test_fast_changes_are_flagged_and_still_sent() -> None:
    chain = _stage("spo2", "validate")
    out = chain.process(Stream("spo2", "%", [T0, T0 + SECOND, T0 + 2 * SECOND], [97.0, 70.0, 71.0], [0, 0, 0]))
    assert out == [Stream("spo2", "%", [T0, T0 + SECOND, T0 + 2 * SECOND], [97.0, 70.0, 71.0],
                          [0, int(Quality.RATE_OF_CHANGE), 0])]
    assert chain.counters["spo2.validate.flagged.rate_of_change"] == 1


def test_rate_check_carries_across_chunks_and_late_readings_are_rejected() -> None:
    chain = _stage("heart_rate", "validate")
    chain.process(Stream("heart_rate", "/min", [T0], [60.0], [0]))
    out = chain.process(Stream("heart_rate", "/min", [T0 - SECOND, T0 + SECOND], [61.0, 150.0], [0, 0]))
    assert out == [Stream("heart_rate", "/min", [T0 + SECOND], [150.0], [int(Quality.RATE_OF_CHANGE)])]
    assert chain.counters["heart_rate.validate.rejected.time_not_increasing"] == 1


def test_waveform_samples_out_of_range_are_clamped_and_flagged() -> None:
    chain = _stage("ecg", "validate")
    stream = Stream.regular("ecg", "mV", T0, 250.0, [0.5, 12.0, float("nan"), -11.0], scale=0.005)
    (out,) = chain.process(stream)
    assert out.values.tolist() == [0.5, 10.0, 0.0, -10.0]
    artifact = int(Quality.ARTIFACT)
    assert out.quality.tolist() == [0, artifact, artifact, artifact]
    assert out.rate_hz == 250.0 and out.scale == 0.005


def test_lead_off_is_a_long_flat_line_and_saturation_a_railed_sample() -> None:
    chain = _stage("ecg", "lead_check", lead_off_s=0.02, rails=[-5.0, 5.0])  # 5 samples at 250 Hz
    first = chain.process(Stream.regular("ecg", "mV", T0, 250.0, [0.1, 0.2, 0.3, 0.3, 0.3]))
    second = chain.process(Stream.regular("ecg", "mV", T0 + 20_000_000, 250.0, [0.3, 0.3, 0.4, 5.0, 0.1]))
    low = int(Quality.LOW_SIGNAL_QUALITY)
    assert first[0].quality.tolist() == [0, 0, 0, 0, 0]
    # The run of 0.3 reaches 5 samples at the second sample of the second chunk.
    assert second[0].quality.tolist() == [0, low, 0, int(Quality.ARTIFACT), 0]
    counters = chain.counters
    assert counters["ecg.lead_check.lead_off_samples"] == 1
    assert counters["ecg.lead_check.lead_off_episodes"] == 1
    assert counters["ecg.lead_check.saturated_samples"] == 1


def test_hampel_replaces_a_spike_but_never_hides_an_alert() -> None:
    chain = _stage("spo2", "spike_filter")
    values = [97.0, 97.0, 98.0, 97.0, 80.0, 97.0, 96.0, 97.0, 97.0, 70.0, 97.0, 97.0, 97.0, 97.0]
    thresholds_free = StreamPipeline.for_metric(
        "spo2", {"stages": ["spike_filter"], "thresholds": {"low": None, "high": None}}
    )
    times = [T0 + i * SECOND for i in range(len(values))]
    out = chain.process(Stream("spo2", "%", times, values, [0] * len(values)))
    out += chain.flush(times[-1], final=True)
    got = np.concatenate([s.values for s in out])
    quality = np.concatenate([s.quality for s in out])
    # 80 and 70 are spikes, but both lie below the 90 % threshold: kept and flagged only.
    assert got.tolist() == values
    assert quality[[4, 9]].tolist() == [int(Quality.ARTIFACT)] * 2
    plain = thresholds_free.process(Stream("spo2", "%", times, values, [0] * len(values)))
    plain += thresholds_free.flush(times[-1], final=True)
    cleaned = np.concatenate([s.values for s in plain])
    assert cleaned[4] == 97.0 and cleaned[9] == 97.0
    assert thresholds_free.counters["spo2.spike_filter.replaced"] == 2


def test_spike_filter_keeps_steps_and_gives_the_same_result_in_chunks() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate((np.full(40, 72.0), np.full(40, 95.0))) + rng.integers(-1, 2, 80)
    values[[10, 55]] += 25.0
    times = T0 + np.arange(80) * SECOND

    def run(chunks: int) -> np.ndarray:
        chain = _stage("heart_rate", "spike_filter")
        parts = []
        for idx in np.array_split(np.arange(80), chunks):
            parts += chain.process(Stream("heart_rate", "/min", times[idx], values[idx], np.zeros(idx.size)))
        parts += chain.flush(int(times[-1]), final=True)
        return np.concatenate([s.values for s in parts])

    one = run(1)
    assert np.array_equal(one, run(13))
    assert abs(one[10] - 72.0) <= 1.0 and abs(one[55] - 95.0) <= 1.0
    assert np.all(one[42:50] >= 93.0)  # the step survives


def test_catalogue_ranges_drive_validation() -> None:
    low, high = CATALOGUE["body_temperature"].plausible
    chain = _stage("body_temperature", "validate")
    out = chain.process(Stream("body_temperature", "Cel", [T0, T0 + 1, T0 + 2], [low - 0.1, 37.0, high], [0, 0, 0]))
    assert out[0].values.tolist() == [37.0, high]
