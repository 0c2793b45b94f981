"""The metric catalogue: required metrics, codes, units and limits that hold together."""

from __future__ import annotations

import dataclasses
import re

import pytest

from vitals.catalogue import CATALOGUE, Metric, MetricKind, UnknownMetricError, get_metric

_REQUIRED = {
    "heart_rate", "spo2", "bp_systolic", "bp_diastolic", "bp_mean", "body_temperature",
    "respiratory_rate", "body_weight", "blood_glucose", "rr_interval", "pulse_rate", "ecg", "ppg",
}


def test_catalogue_holds_every_required_metric() -> None:
    assert set(CATALOGUE) >= _REQUIRED


def test_catalogue_keys_are_metric_names() -> None:
    for name, metric in CATALOGUE.items():
        assert metric.name == name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name


@pytest.mark.parametrize(
    ("name", "unit", "loinc", "mdc_code", "mdc_ref"),
    [
        ("heart_rate", "/min", "8867-4", 147842, "MDC_ECG_HEART_RATE"),
        ("pulse_rate", "/min", "8889-8", 149530, "MDC_PULS_OXIM_PULS_RATE"),
        ("spo2", "%", "59408-5", 150456, "MDC_PULS_OXIM_SAT_O2"),
        ("bp_systolic", "mm[Hg]", "8480-6", 150021, "MDC_PRESS_BLD_NONINV_SYS"),
        ("bp_diastolic", "mm[Hg]", "8462-4", 150022, "MDC_PRESS_BLD_NONINV_DIA"),
        ("bp_mean", "mm[Hg]", "8478-0", 150023, "MDC_PRESS_BLD_NONINV_MEAN"),
        ("body_temperature", "Cel", "8310-5", 150364, "MDC_TEMP_BODY"),
        ("respiratory_rate", "/min", "9279-1", 151562, "MDC_RESP_RATE"),
        ("body_weight", "kg", "29463-7", 188736, "MDC_MASS_BODY_ACTUAL"),
        ("rr_interval", "ms", "8637-1", 147240, "MDC_ECG_TIME_PD_RR_GL"),
        ("ecg", "mV", None, 131330, "MDC_ECG_ELEC_POTL_II"),
        ("ppg", "1", None, 150452, "MDC_PULS_OXIM_PLETH"),
        ("perfusion_index", "%", "61006-3", 150448, "MDC_PULS_OXIM_PERF_REL"),
    ],
)
def test_codes_and_units(name: str, unit: str, loinc: str | None, mdc_code: int, mdc_ref: str) -> None:
    metric = CATALOGUE[name]
    assert (metric.unit, metric.loinc, metric.mdc_code, metric.mdc_ref) == (unit, loinc, mdc_code, mdc_ref)


@pytest.mark.parametrize(
    ("name", "unit", "loinc", "low", "high"),
    [
        ("hrv_sdnn", "ms", "80404-7", 0.0, 1500.0),
        ("hrv_rmssd", "ms", None, 0.0, 3000.0),
        ("af_irregularity", "1", None, 0.0, 15.0),
        ("ecg_sqi", "1", None, 0.0, 1.0),
        ("ppg_sqi", "1", None, 0.0, 1.0),
    ],
)
def test_gateway_indicators_have_no_mdc_term_and_a_slow_rate(
    name: str, unit: str, loinc: str | None, low: float, high: float
) -> None:
    metric = CATALOGUE[name]
    assert (metric.unit, metric.loinc, metric.mdc_code, metric.mdc_ref) == (unit, loinc, None, None)
    assert metric.plausible == (low, high) and metric.kind is MetricKind.NUMERIC
    assert metric.max_hz == 1.0  # the edge sends one per SQI window (>= 1 s) or per HRV interval (>= 10 s)


def test_blood_glucose_is_molar() -> None:
    metric = CATALOGUE["blood_glucose"]
    assert (metric.unit, metric.loinc, metric.mdc_ref) == ("mmol/L", "15074-8", "MDC_CONC_GLU_GEN")


def test_mdc_codes_are_in_the_physiological_partition_and_unique() -> None:
    codes = [m.mdc_code for m in CATALOGUE.values() if m.mdc_code is not None]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert code >> 16 == 2  # MDC_PART_SCADA
    refs = [m.mdc_ref for m in CATALOGUE.values() if m.mdc_ref is not None]
    assert len(refs) == len(set(refs))
    assert all(ref.startswith("MDC_") for ref in refs)


def test_loinc_codes_have_a_valid_check_digit() -> None:
    # LOINC uses the mod-10 (Luhn) check digit after the dash.
    for metric in CATALOGUE.values():
        if metric.loinc is None:
            continue
        body, check = metric.loinc.split("-")
        digits = [int(c) for c in body][::-1]
        total = 0
        for index, digit in enumerate(digits):
            if index % 2 == 0:
                digit *= 2
                digit = digit - 9 if digit > 9 else digit
            total += digit
        assert (10 - total % 10) % 10 == int(check), metric.name


def test_ranges_resolutions_and_rates_are_consistent() -> None:
    for metric in CATALOGUE.values():
        low, high = metric.plausible
        assert low < high, metric.name
        assert 0 < metric.resolution < high - low, metric.name
        assert metric.max_rate is None or metric.max_rate > 0, metric.name
        assert metric.label and metric.unit


def test_waveforms_are_exactly_ecg_and_ppg() -> None:
    waveforms = {name for name, m in CATALOGUE.items() if m.kind is MetricKind.WAVEFORM}
    assert waveforms == {"ecg", "ppg"}
    assert all(CATALOGUE[name].max_rate is None for name in waveforms)


def test_is_plausible_is_a_closed_range() -> None:
    spo2 = CATALOGUE["spo2"]
    assert spo2.is_plausible(40.0) and spo2.is_plausible(100.0) and spo2.is_plausible(88.5)
    assert not spo2.is_plausible(39.99) and not spo2.is_plausible(100.01)
    assert not spo2.is_plausible(float("nan"))


def test_get_metric_returns_the_entry() -> None:
    assert get_metric("spo2") is CATALOGUE["spo2"]


def test_get_metric_unknown_names_the_metric_and_known_ones() -> None:
    with pytest.raises(UnknownMetricError) as info:
        get_metric("spo3")
    message = info.value.args[0]
    assert message.startswith("unknown metric 'spo3'; known metrics: ")
    assert "spo2" in message and "heart_rate" in message
    assert isinstance(info.value, KeyError)


def test_metrics_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOGUE["spo2"].unit = "1"  # type: ignore[misc]
    assert isinstance(CATALOGUE["spo2"], Metric)
