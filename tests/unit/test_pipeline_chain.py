"""The pipeline as the gateway uses it: configuration, routing, counters, the wire."""

from __future__ import annotations

import numpy as np
import pytest

import edge.pipeline
from edge.pipeline import STAGES, Pipeline, PipelineConfigError, Stage, StreamPipeline, default_chain
from edge.pipeline.registry import register_stage
from tests.unit._pipeline_signals import synthetic_ecg, synthetic_ppg
from vitals import Batch, Quality, Stream, decode_batch, encode_batch

T0 = 1_700_000_000 * 10**9
SECOND = 10**9


def test_exported_names_are_exactly_the_public_ones() -> None:
    public = {name for name in dir(edge.pipeline) if not name.startswith("_")}
    modules = {"builtin", "compression", "ecg", "hrv", "ppg", "registry", "sqi", "stages", "thresholds"}
    assert public - modules == set(edge.pipeline.__all__)


def test_every_stage_folder_is_registered_under_its_name() -> None:
    assert set(STAGES) == {
        "validate", "lead_check", "ecg_filter", "ppg_filter", "spike_filter", "ecg_beats", "ppg_pulses",
        "swinging_door", "waveform_counts",
    }
    for name, cls in STAGES.items():
        assert cls.name == name
        assert cls.__module__ == f"edge.pipeline.stages.{name}"


def test_default_chains_read_validate_filter_derive_compress() -> None:
    assert default_chain("ecg") == ("validate", "lead_check", "ecg_filter", "ecg_beats", "waveform_counts")
    assert default_chain("spo2") == ("validate", "spike_filter", "swinging_door")
    assert default_chain("bp_systolic") == ("validate", "swinging_door")
    chain = StreamPipeline.for_metric("heart_rate", {"heartbeat_s": 60})
    assert [stage.name for stage in chain.stages] == ["validate", "spike_filter", "swinging_door"]


def test_configuration_errors_name_the_problem() -> None:
    with pytest.raises(PipelineConfigError, match="mains_hertz"):
        StreamPipeline.for_metric("ecg", {"mains_hertz": 60})
    with pytest.raises(PipelineConfigError, match="unknown pipeline stage 'smooth'"):
        StreamPipeline.for_metric("spo2", {"stages": ["validate", "smooth"]})
    with pytest.raises(PipelineConfigError, match="unknown metric"):
        Pipeline({"spo3": {}})
    with pytest.raises(PipelineConfigError, match="thresholds"):
        Pipeline({"spo2": {"thresholds": {"lower": 88}}})


def test_registering_a_second_class_under_a_taken_name_fails() -> None:
    class Other(Stage):
        name = "validate"

    with pytest.raises(ValueError, match="already registered"):
        register_stage(Other)


def test_ecg_yields_lossless_ecg_heart_rate_and_rr_that_the_wire_carries() -> None:
    fs = 250.0
    ecg, truth = synthetic_ecg(40.0, fs, rr_s=0.8, rr_jitter_s=0.0)
    pipeline = Pipeline({"defaults": {"mains_hz": 50}})
    out: list[Stream] = []
    for second in range(40):
        chunk = ecg[int(second * fs):int((second + 1) * fs)]
        out += pipeline.process(Stream.regular("ecg", "mV", T0 + second * SECOND, fs, chunk))
    by_metric: dict[str, list[Stream]] = {}
    for stream in out:
        by_metric.setdefault(stream.metric, []).append(stream)
    assert set(by_metric) == {"ecg", "heart_rate", "rr_interval", "ecg_sqi", "hrv_sdnn", "hrv_rmssd",
                              "af_irregularity"}
    sqi = np.concatenate([s.values for s in by_metric["ecg_sqi"]])
    assert sqi.size == 8 and np.all(sqi == 1.0)  # one per 5 s window of a clean ECG
    # A perfectly regular rhythm: no variability at all, once 32 intervals are in.
    for metric in ("hrv_sdnn", "hrv_rmssd", "af_irregularity"):
        assert np.concatenate([s.values for s in by_metric[metric]]).tolist() == [0.0]
    waveform = by_metric["ecg"]
    assert all(s.scale == 0.001 and s.rate_hz == fs for s in waveform)
    assert sum(len(s) for s in waveform) == ecg.size
    rr = np.concatenate([s.values for s in by_metric["rr_interval"]])
    assert rr.size == truth.size - 1  # every beat but the first
    assert np.all(rr == 800.0)
    heart_rate = np.concatenate([s.values for s in by_metric["heart_rate"]])
    assert set(heart_rate.tolist()) == {75.0}
    batch = Batch("gw-1", 7, "patient-1", "ecg-1", "generic-ecg", tuple(out[-40:]))
    decoded = decode_batch(encode_batch(batch))
    assert decoded.streams == batch.streams
    assert pipeline.counters["ecg.ecg_beats.beats"] == truth.size
    assert pipeline.indicators["ecg"]["af_suspected"] is False


def test_ppg_yields_pulse_rate() -> None:
    fs = 100.0
    ppg = synthetic_ppg(30.0, fs, period_s=0.75)
    pipeline = Pipeline({"pulse_rate": {"stages": ["validate"]}})  # every pulse, uncompressed
    out: list[Stream] = []
    for second in range(30):
        chunk = ppg[int(second * fs):int((second + 1) * fs)]
        out += pipeline.process(Stream.regular("ppg", "1", T0 + second * SECOND, fs, chunk))
    rates = np.concatenate([s.values for s in out if s.metric == "pulse_rate"])
    assert rates.size == pipeline.counters["ppg.ppg_pulses.beats"] - 1 >= 37
    assert set(rates.tolist()) == {80.0}


def test_impossible_readings_are_rejected_and_counted_never_sent() -> None:
    pipeline = Pipeline()
    stream = Stream("spo2", "%", [T0, T0 + SECOND, T0 + 2 * SECOND, T0 + 3 * SECOND],
                    [97.0, 140.0, float("nan"), 12.0], [0, 0, 0, 0])
    out = pipeline.process(stream) + pipeline.flush(T0 + 10 * SECOND, final=True)
    values = np.concatenate([s.values for s in out])
    assert values.tolist() == [97.0]
    counters = pipeline.counters
    assert counters["spo2.validate.rejected.above_plausible"] == 1
    assert counters["spo2.validate.rejected.not_finite"] == 1
    assert counters["spo2.validate.rejected.below_plausible"] == 1


def test_flush_sends_a_heartbeat_but_silence_stays_silent() -> None:
    pipeline = Pipeline({"spo2": {"heartbeat_s": 60, "stages": ["validate", "swinging_door"]}})
    sent = pipeline.process(Stream.regular("spo2", "%", T0, 1.0, [97.0] * 30))
    assert [s.values.tolist() for s in sent] == [[97.0]]
    assert pipeline.flush(T0 + 30 * SECOND) == []
    beat = pipeline.flush(T0 + 61 * SECOND)
    assert len(beat) == 1
    assert beat[0].times_ns.tolist() == [T0 + 29 * SECOND]
    assert beat[0].quality.tolist() == [int(Quality.HEARTBEAT)]
    assert pipeline.flush(T0 + 1000 * SECOND) == []  # no new reading: no heartbeat


def test_every_stage_folder_has_a_readme_and_a_sample_the_pipeline_accepts() -> None:
    from pathlib import Path

    import yaml

    root = Path(edge.pipeline.__file__).parent / "stages"
    for name in STAGES:
        folder = root / name
        assert (folder / "README.md").read_text().startswith(f"# `{name}`")
        sample = yaml.safe_load((folder / "sample.yaml").read_text())
        Pipeline(sample)  # every option shown is a real option of that metric's default chain
        assert all(set(section) <= set(STAGES[name].OPTIONS) for section in sample.values())


def test_every_stage_declares_the_types_of_exactly_the_options_it_reads() -> None:
    from edge.pipeline import STAGES

    for name, stage in STAGES.items():
        assert set(stage.Options.model_fields) == set(stage.OPTIONS), name
        assert stage.Options() is not None  # the defaults themselves are valid
