"""The retained per-patient threshold message on ``vb/v1/{gateway}/cmd/config``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitals import CATALOGUE, MetricKind
from vitals.patient_thresholds import (
    MAX_LEVELS,
    ThresholdConfig,
    ThresholdConfigError,
    build_threshold_config,
    decode_threshold_config,
)
from vitals.topics import config_topic

NUMERIC = sorted(name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.NUMERIC)


def test_the_message_is_versioned_compact_json_and_decodes_whole() -> None:
    payload = build_threshold_config({"patient-001": {"spo2": [92, 88, 92.0]}, "patient-002": {}}, revision=7)
    assert payload == b'{"patients":{"patient-001":{"spo2":[88.0,92.0]}},"revision":7,"v":1}'
    assert decode_threshold_config(payload) == ThresholdConfig(7, {"patient-001": {"spo2": (88.0, 92.0)}})
    assert decode_threshold_config(payload).levels_for("patient-001") == {"spo2": (88.0, 92.0)}
    assert decode_threshold_config(payload).levels_for("patient-009") == {}
    assert config_topic("home-0001") == "vb/v1/home-0001/cmd/config"


@st.composite
def threshold_maps(draw: st.DrawFn) -> dict[str, dict[str, list[float]]]:
    patients = draw(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), max_size=5, unique=True))
    out: dict[str, dict[str, list[float]]] = {}
    for patient in patients:
        metrics = draw(st.lists(st.sampled_from(NUMERIC), max_size=4, unique=True))
        out[patient] = {}
        for metric in metrics:
            low, high = CATALOGUE[metric].plausible
            out[patient][metric] = draw(st.lists(st.floats(low, high), min_size=1, max_size=MAX_LEVELS))
    return out


@given(thresholds=threshold_maps(), revision=st.integers(0, 2**53 - 1))
def test_what_the_cloud_builds_the_gateway_decodes_to_the_same_levels(
    thresholds: dict[str, dict[str, list[float]]], revision: int
) -> None:
    config = decode_threshold_config(build_threshold_config(thresholds, revision=revision))
    assert config.revision == revision
    expected = {p: {m: tuple(sorted(set(v))) for m, v in metrics.items()}
                for p, metrics in thresholds.items() if metrics}
    assert config.patients == expected


@given(payload=st.binary(max_size=300))
def test_any_bytes_decode_or_raise_the_one_error(payload: bytes) -> None:
    try:
        decode_threshold_config(payload)
    except ThresholdConfigError as exc:
        assert "\n" not in str(exc)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(patients=_json, revision=_json)
def test_any_json_shape_decodes_or_raises_the_one_error(patients: object, revision: object) -> None:
    payload = json.dumps({"v": 1, "revision": revision, "patients": patients}).encode()
    try:
        decode_threshold_config(payload)
    except ThresholdConfigError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(("message", "error"), [
    (b"", "1..262144 bytes"),
    (b"{", "not valid JSON"),
    (b"[1]", "expected a JSON object, got list"),
    (b'{"v": 2, "revision": 1, "patients": {}}', "unsupported threshold message version '2'"),
    (b'{"v": 1, "revision": -1, "patients": {}}', "revision: Input should be greater than or equal to 0"),
    (b'{"v": 1, "revision": "1", "patients": {}}', "revision: Input should be a valid integer"),
    (b'{"v": 1, "revision": 1, "patients": {}, "extra": 1}', "extra: Extra inputs are not permitted"),
    (b'{"v": 1, "revision": 1, "patients": {"p 1": {"spo2": [92]}}}', "patient id 'p 1' is not"),
    (b'{"v": 1, "revision": 1, "patients": {"p1": {"spo3": [92]}}}', "'spo3' is not a numeric catalogue metric"),
    (b'{"v": 1, "revision": 1, "patients": {"p1": {"ecg": [1]}}}', "'ecg' is not a numeric catalogue metric"),
    (b'{"v": 1, "revision": 1, "patients": {"p1": {"spo2": [120]}}}', "level 120 lies outside the plausible range"),
    (b'{"v": 1, "revision": 1, "patients": {"p1": {"spo2": [NaN]}}}', "Input should be a finite number"),
    (b'{"v": 1, "revision": 1, "patients": {"p1": {"spo2": []}}}', "at least 1 item"),
    (b'{"v": 1, "revision": 1, "patients": {"p1": {"spo2": [true]}}}', "Input should be a valid number"),
])
def test_a_bad_message_is_one_line_naming_the_field(message: bytes, error: str) -> None:
    with pytest.raises(ThresholdConfigError) as info:
        decode_threshold_config(message)
    assert error in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("thresholds", "error"), [
    ({"p1": {"spo2": [float("inf")]}}, "finite"),
    ({"p1": {"spo2": ["x"]}}, "patient -> metric -> numbers"),
    ({"p1": {"spo2": list(range(50, 50 + MAX_LEVELS + 1))}}, "at most 16 items"),
    ({"p1": {"ppg": [1.0]}}, "'ppg' is not a numeric catalogue metric"),
])
def test_the_builder_refuses_what_the_gateway_would(thresholds: dict[str, dict[str, list[float]]],
                                                    error: str) -> None:
    with pytest.raises(ThresholdConfigError, match=error):
        build_threshold_config(thresholds, revision=1)
