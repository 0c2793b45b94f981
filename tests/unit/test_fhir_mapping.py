"""The FHIR mapping: every catalogue metric as an Observation the R4B models accept, with its codes and unit;
blood pressure as one panel; waveforms as SampledData; deterministic ids; search dates; the other resources."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.fhir import (
    BP_METRICS,
    BP_PANEL_LOINC,
    LOINC,
    MDC,
    UCUM,
    SearchError,
    StoredValue,
    TimeRange,
    WaveformWindow,
    alert_issue,
    capability_statement,
    device_resource,
    fhir_id,
    fhir_instant,
    gateway_resource,
    mapping_rows,
    mapping_table_markdown,
    metrics_for_code,
    numeric_observation,
    observations_from_values,
    operation_outcome,
    parse_date_params,
    parse_reference,
    patient_resource,
    searchset,
    transaction_entry,
    waveform_observation,
)
from cloud.registry import Device, Gateway, Patient
from cloud.store import AlertRecord
from tests.fhir_helpers import parse_all, parse_resource
from vitals.catalogue import CATALOGUE, MetricKind

S = 10**9
T0 = 1_714_557_600 * S  # 2024-05-01T10:00:00Z
NUMERIC = [name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.NUMERIC]
WAVEFORM = [name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.WAVEFORM]
DOC = Path(__file__).resolve().parents[2] / "docs" / "interoperability.md"


def _codes(concept: dict[str, Any], system: str) -> list[str]:
    return [coding["code"] for coding in concept["coding"] if coding["system"] == system]


def _middle(metric: str) -> float:
    low, high = CATALOGUE[metric].plausible
    return round((low + high) / 2, 3)


@pytest.mark.parametrize("metric", list(CATALOGUE))
def test_every_catalogue_metric_is_an_observation_with_its_codes_and_unit(metric: str) -> None:
    entry = CATALOGUE[metric]
    if entry.kind is MetricKind.WAVEFORM:
        times = [T0 + i * S // 250 for i in range(50)]
        resource = waveform_observation(WaveformWindow("p1", "dev-1", metric, times, [0.25] * 50))
        sampled = resource["valueSampledData"]
        assert sampled["origin"]["code"] == entry.unit and sampled["origin"]["system"] == UCUM
        assert sampled["period"] == pytest.approx(4.0) and len(sampled["data"].split()) == 50
    else:
        resource = numeric_observation(StoredValue("p1", "dev-1", metric, T0, _middle(metric)))
        quantity = resource["valueQuantity"]
        assert (quantity["system"], quantity["code"], quantity["unit"]) == (UCUM, entry.unit, entry.unit)
        assert quantity["value"] == _middle(metric)
    model = parse_resource(resource)
    assert model.get_resource_type() == "Observation"
    assert (_codes(resource["code"], LOINC)[:1] or [None]) == [entry.loinc]
    assert _codes(resource["code"], MDC) == ([str(entry.mdc_code)] if entry.mdc_code is not None else [])
    assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert resource["device"] == {"reference": "Device/dev-1"}
    assert resource["effectiveDateTime"] == "2024-05-01T10:00:00Z"
    assert resource["identifier"][0]["value"] == f"urn:uuid:{resource['id']}"


def test_blood_pressure_of_one_cuff_at_one_time_is_one_panel() -> None:
    values = [StoredValue("p1", "cuff", "bp_systolic", T0, 132.0), StoredValue("p1", "cuff", "bp_diastolic", T0, 82.0),
              StoredValue("p1", "cuff", "pulse_rate", T0, 68.0), StoredValue("p1", "cuff", "bp_mean", T0, 99.0),
              StoredValue("p1", "cuff", "bp_systolic", T0 + S, 140.0)]
    panel, pulse, lone = observations_from_values(values)
    parse_all([panel, pulse, lone])
    assert _codes(panel["code"], LOINC) == [BP_PANEL_LOINC] and "valueQuantity" not in panel
    components = {_codes(c["code"], LOINC)[0]: c["valueQuantity"]["value"] for c in panel["component"]}
    assert components == {"8480-6": 132.0, "8462-4": 82.0, "8478-0": 99.0}
    assert "http://hl7.org/fhir/StructureDefinition/bp" in panel["meta"]["profile"]
    assert _codes(pulse["code"], LOINC) == ["8889-8"]
    assert _codes(lone["code"], LOINC) == ["8480-6"] and lone["valueQuantity"]["value"] == 140.0


def test_two_cuffs_at_the_same_instant_are_two_panels() -> None:
    values = [StoredValue("p1", device, metric, T0, value) for device in ("a", "b")
              for metric, value in (("bp_systolic", 120.0), ("bp_diastolic", 80.0))]
    panels = observations_from_values(values)
    assert [p["device"]["reference"] for p in panels] == ["Device/a", "Device/b"]
    assert len({p["id"] for p in panels}) == 2


def test_ids_are_deterministic_and_change_with_the_value() -> None:
    first = numeric_observation(StoredValue("p1", "ox", "spo2", T0, 97.0))
    again = numeric_observation(StoredValue("p1", "ox", "spo2", T0, 97.0, quality=0))
    other = numeric_observation(StoredValue("p1", "ox", "spo2", T0, 96.0))
    assert first == again and first["id"] != other["id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", first["id"])


def test_a_value_that_is_not_clean_carries_its_quality_flags_as_tags() -> None:
    resource = numeric_observation(StoredValue("p1", "ox", "spo2", T0, 97.0, quality=2 | 8))
    parse_resource(resource)
    assert [tag["code"] for tag in resource["meta"]["tag"]] == ["ARTIFACT", "DEVICE_QUESTIONABLE"]


def test_a_waveform_gap_is_written_as_E() -> None:
    times = [T0, T0 + 4_000_000, T0 + 12_000_000, T0 + 16_000_000]
    resource = waveform_observation(WaveformWindow("p1", "patch", "ecg", times, [0.1, 0.2, 0.4, 0.5]))
    assert resource["valueSampledData"]["data"] == "0.1 0.2 E 0.4 0.5"
    with pytest.raises(ValueError, match="not a waveform"):
        waveform_observation(WaveformWindow("p1", "patch", "spo2", times, [1.0] * 4))


def test_ids_that_fhir_refuses_become_uuids() -> None:
    assert fhir_id("patient-001") == "patient-001"
    assert fhir_id("p_1") != "p_1" and fhir_id("p_1") == fhir_id("p_1")
    resource = patient_resource(Patient("p_1", "Ann Example", dt.date(1950, 2, 3)))
    assert parse_resource(resource).id == fhir_id("p_1")
    assert resource["identifier"][0]["value"] == "p_1" and resource["birthDate"] == "1950-02-03"


def test_patient_device_gateway_alert_and_capability_parse() -> None:
    device = device_resource(Device("cuff-1", "p1", "gw-1", "generic.bp_cuff"))
    assert device["parent"] == {"reference": "Device/gw-1"} and device["patient"] == {"reference": "Patient/p1"}
    alert = AlertRecord(id=7, rule="spo2_low_sustained", patient="p1", metric="spo2", severity="urgent",
                        episode_start_ns=T0, fired_ns=T0 + 60 * S, last_ns=T0 + 90 * S, worst_value=84.0,
                        threshold=90.0, message="SpO2 below 90% for 60 s", state="acknowledged",
                        acknowledged_at=dt.datetime(2024, 5, 1, 10, 5, tzinfo=dt.UTC), acknowledged_by="dr.a")
    issue = alert_issue(alert)
    assert (issue["severity"], issue["status"]) == ("high", "preliminary")
    assert issue["mitigation"][0]["action"]["text"] == "acknowledged by dr.a"
    capability = capability_statement("http://x/fhir", "1.0", "2024-05-01T10:00:00Z")
    outcome = operation_outcome("not_found", "not found")
    parse_all([device, gateway_resource(Gateway("gw-1", "home")), issue, capability, outcome,
               patient_resource(Patient("p1", "P One"))])
    bundle = searchset([device], "http://x/fhir", "http://x/fhir/Device?patient=p1", "http://x/next")
    parse_resource(bundle)
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [transaction_entry(device)]}
    assert parse_resource(transaction).entry[0].request.url == "Device/cuff-1"


def test_code_search_tokens() -> None:
    assert metrics_for_code("http://loinc.org|59408-5") == {"spo2"}
    assert metrics_for_code("2708-6") == {"spo2"}
    assert metrics_for_code(f"{MDC}|{CATALOGUE['spo2'].mdc_code}") == {"spo2"}
    assert metrics_for_code("85354-9") == metrics_for_code("8480-6") == set(BP_METRICS)
    assert metrics_for_code("ecg") == {"ecg"}
    assert metrics_for_code("http://loinc.org|ecg") is None
    assert metrics_for_code("nothing") is None


# -- hypothesis: the mapper ------------------------------------------------------------------------------

_values = st.builds(
    StoredValue,
    patient=st.sampled_from(["p1", "p_2"]),
    device=st.sampled_from(["cuff", "ox", "dev_3"]),
    metric=st.sampled_from(NUMERIC),
    time_ns=st.integers(0, 4_000_000_000) .map(lambda s: s * S // 1000 * 1000),
    value=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    quality=st.integers(0, 255),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_values, max_size=12))
def test_any_values_map_to_valid_observations_holding_every_value_once(values: list[StoredValue]) -> None:
    resources = observations_from_values(values)
    parse_all(resources)
    carried: list[tuple[str, float]] = []
    for resource in resources:
        parts = resource.get("component", [resource])
        for part in parts:
            metric = next(c["code"] for c in part["code"]["coding"] if c["system"] == "urn:vitalbridge:fhir:metric")
            carried.append((metric, part["valueQuantity"]["value"]))
    assert sorted(carried) == sorted((v.metric, float(v.value)) for v in values)
    assert observations_from_values(values) == resources  # deterministic


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=40, unique=True),
       st.floats(-10, 10, allow_nan=False))
def test_any_waveform_window_is_valid_sampled_data(offsets: list[int], value: float) -> None:
    times = sorted(T0 + offset for offset in offsets)
    resource = waveform_observation(WaveformWindow("p1", "patch", "ecg", times, [value] * len(times)))
    parse_resource(resource)
    data = resource["valueSampledData"]["data"].split()
    assert data[0] != "E" and data[-1] != "E" and sum(item != "E" for item in data) <= len(times)


# -- hypothesis: search dates ----------------------------------------------------------------------------

_moments = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1),
                        timezones=st.just(dt.UTC))


def _ns(moment: dt.datetime) -> int:
    return int((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1)) * 1000


@given(_moments)
def test_a_full_date_time_bounds_to_the_microsecond(moment: dt.datetime) -> None:
    text = moment.isoformat().replace("+00:00", "Z")
    span = parse_date_params([f"ge{text}", f"le{text}"])
    assert span.start_ns == _ns(moment) and span.end_ns > span.start_ns
    assert fhir_instant(_ns(moment)).replace(".000000", "") == text.replace(".000000", "")


@given(_moments)
def test_a_day_stands_for_the_whole_day(moment: dt.datetime) -> None:
    day = moment.date().isoformat()
    span = parse_date_params([day])
    assert span.start_ns <= _ns(moment) < span.end_ns and span.end_ns - span.start_ns == 86_400 * S
    assert parse_date_params([f"lt{day}"]).end_ns == span.start_ns == parse_date_params([f"ge{day}"]).start_ns
    assert parse_date_params([f"gt{day}"]).start_ns == span.end_ns == parse_date_params([f"le{day}"]).end_ns


@given(st.text(max_size=40))
def test_any_text_is_a_range_or_one_clear_error(text: str) -> None:
    try:
        span = parse_date_params([text])
    except SearchError as exc:
        assert str(exc)
    else:
        assert isinstance(span, TimeRange)


def test_months_years_zones_and_bad_dates() -> None:
    may = parse_date_params(["2024-05"])
    assert (may.end_ns - may.start_ns) // (86_400 * S) == 31
    assert parse_date_params(["2024"]).end_ns == parse_date_params(["ge2025"]).start_ns
    assert parse_date_params(["ge2024-05-01T12:00:00+02:00"]).start_ns == T0
    assert parse_date_params(["eq2024-05-01T10:00"]).end_ns == T0 + 60 * S
    for bad in ("2024-13", "2024-02-30", "xx2024", "2024-05-01T25:00", "yesterday"):
        with pytest.raises(SearchError):
            parse_date_params([bad])
    assert parse_reference("Patient/p1", "Patient") == parse_reference("p1", "Patient") == "p1"
    assert parse_reference("http://x/fhir/Patient/p1", "Patient") == "p1"
    with pytest.raises(SearchError):
        parse_reference("Device/d1", "Patient")


# -- the guide's mapping table ---------------------------------------------------------------------------


def test_the_guides_mapping_table_is_the_catalogues() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- mapping-table:start -->", 1)[1].split("<!-- mapping-table:end -->", 1)[0]
    assert table.strip() == mapping_table_markdown().strip(), (
        "regenerate it: python -c 'from cloud.fhir import mapping_table_markdown as t; print(t())'")
    assert len(mapping_rows()) == len(CATALOGUE)
