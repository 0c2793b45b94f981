"""HL7 v2 builders: PCD-01 ORU^R01 and PCD-04 ORU^R40, parsed back by the HL7 libraries.

python-hl7 reads every field back; hl7apy validates the v2.6 message structure (segments, groups,
required fields).
"""

from __future__ import annotations

import datetime as dt

import hl7
import numpy as np
import pytest
from hl7apy.parser import parse_message
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.alerting import AlertSummary
from cloud.hl7 import (
    LOCAL_CODING_SYSTEM,
    AlertReport,
    MessageHeader,
    ObservationReport,
    alert_control_id,
    batch_control_id,
    batch_report,
    build_oru_r01,
    build_oru_r40,
    export_control_id,
    format_value,
    hl7_time,
    numeric_metrics,
    observation_codes,
)
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import Batch, Sample, Stream

T0 = 1_764_690_300_123_456_789  # 2025-12-02T15:45:00.123456789Z


def field(message: hl7.Message, segment: hl7.Segment, index: int) -> str:
    return str(message.unescape(str(segment(index))))


def component(segment: hl7.Segment, index: int, comp: int) -> str:
    value = segment(index)
    try:
        return str(value(1)(comp))
    except IndexError:
        return ""


def report(samples: list[Sample], **overrides: object) -> ObservationReport:
    values: dict[str, object] = {"control_id": "VB0123456789abcdef01", "created_ns": T0, "patient": "pseudo-17",
                                 "gateway": "gw-a", "device": "ox-1", "order": "gw-a.e1.42", "observations": samples}
    values.update(overrides)
    return ObservationReport(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", numeric_metrics())
def test_every_numeric_metric_becomes_an_obx_with_its_codes_unit_time_and_device(metric: str) -> None:
    entry = CATALOGUE[metric]
    value = entry.plausible[0] + entry.resolution
    text = build_oru_r01(report([Sample(metric, T0, value)]))
    message = hl7.parse(text)
    msh, pid, obr = message.segment("MSH"), message.segment("PID"), message.segment("OBR")
    assert str(msh(9)) == "ORU^R01^ORU_R01" and str(msh(10)) == "VB0123456789abcdef01" and str(msh(12)) == "2.6"
    assert str(msh(21)).startswith("IHE_PCD_001^")
    assert component(pid, 3, 1) == "pseudo-17" and component(pid, 3, 5) == "PI"
    assert component(obr, 3, 1) == "gw-a.e1.42" and str(obr(7)) == hl7_time(T0)
    mds, obx = message.segments("OBX")
    assert str(mds(4)) == "1.0.0.0" and component(mds, 3, 2) == "MDC_MOC_VMS_MDS_SIMP"
    assert str(obx(2)) == "NM" and str(obx(4)) == "1.1.1.1" and float(str(obx(5))) == value
    if entry.mdc_code is not None:
        assert [component(obx, 3, i) for i in (1, 2, 3)] == [str(entry.mdc_code), entry.mdc_ref, "MDC"]
    else:
        assert component(obx, 3, 1) == metric and component(obx, 3, 3) == LOCAL_CODING_SYSTEM
    # OBX-6: the MDC unit where there is one, always the UCUM alternate.
    assert [component(obx, 6, i) for i in (4, 6)] == [entry.unit, "UCUM"]
    codes = observation_codes(metric)
    assert component(obx, 6, 1) == codes.unit[0]
    assert str(obx(11)) == "R" and str(obx(14)) == hl7_time(T0) == "20251202154500.1234+0000"
    assert [component(obx, 18, 1), component(obx, 18, 2)] == ["ox-1", "gw-a"]
    parsed = parse_message(text, find_groups=True)
    assert parsed.validate()  # the v2.6 ORU_R01 structure, required fields included


def test_units_are_mdc_coded_for_every_metric_with_an_mdc_term() -> None:
    for metric in numeric_metrics():
        codes = observation_codes(metric)
        if CATALOGUE[metric].mdc_code is not None:
            assert codes.unit[2] == "MDC" and codes.unit[1].startswith("MDC_DIM_"), metric
    assert observation_codes("respiratory_rate").unit[1] == "MDC_DIM_RESP_PER_MIN"
    assert observation_codes("pulse_rate").unit[1] == "MDC_DIM_BEAT_PER_MIN"


def test_metrics_get_their_own_containment_number_and_observations_are_ordered_by_time() -> None:
    samples = [Sample("heart_rate", T0 + 2, 60.0), Sample("spo2", T0, 97.0), Sample("heart_rate", T0 + 1, 61.0),
               Sample("no_such_metric", T0, 1.0), Sample("spo2", T0 + 3, float("nan"))]
    message = hl7.parse(build_oru_r01(report(samples)))
    rows = [(str(o(4)), str(o(5))) for o in message.segments("OBX")[1:]]
    assert rows == [("1.1.1.1", "97"), ("1.1.1.2", "61"), ("1.1.1.2", "60")]
    assert [str(o(1)) for o in message.segments("OBX")] == ["1", "2", "3", "4"]


def test_nothing_to_report_is_an_error() -> None:
    with pytest.raises(ValueError, match="no observation"):
        build_oru_r01(report([Sample("spo2", T0, float("inf"))]))


def test_separators_in_ids_are_escaped_and_read_back() -> None:
    text = build_oru_r01(report([Sample("spo2", T0, 97.0)], patient="a|b^c~d\\e&f", device="dev^1"))
    message = hl7.parse(text)
    pid = message.segment("PID")
    assert str(message.unescape(component(pid, 3, 1))) == "a|b^c~d\\e&f"
    assert len(message.segments("OBX")) == 2 and str(message.unescape(component(message.segments("OBX")[1], 18, 1))) \
        == "dev^1"


def test_header_fields_come_from_the_message_header() -> None:
    header = MessageHeader(sending_application="VB", sending_facility="Clinic 7", receiving_application="EHR",
                           receiving_facility="Hospital", patient_authority="RPM")
    msh = hl7.parse(build_oru_r01(report([Sample("spo2", T0, 97.0)]), header)).segment("MSH")
    assert [str(msh(i)) for i in (3, 4, 5, 6)] == ["VB", "Clinic 7", "EHR", "Hospital"]


def test_a_batch_report_keeps_numeric_streams_and_leaves_waveforms_out() -> None:
    batch = Batch("gw-a", 42, "p1", "patch-1", "generic.ecg_patch", (
        Stream.regular("ecg", "mV", T0, 250.0, np.zeros(500)),
        Stream.from_samples("heart_rate", "/min", [Sample("heart_rate", T0, 70.0),
                                                   Sample("heart_rate", T0 + 10**9, 71.0)]),
    ), epoch="e1")
    found = batch_report(batch, T0)
    assert found is not None
    assert found.control_id == batch_control_id("gw-a", "e1", 42) and found.order == "gw-a.e1.42"
    assert [s.metric for s in found.observations] == ["heart_rate", "heart_rate"]
    only_ecg = Batch("gw-a", 43, "p1", "patch-1", "generic.ecg_patch",
                     (Stream.regular("ecg", "mV", T0, 250.0, np.zeros(5)),), epoch="e1")
    assert batch_report(only_ecg, T0) is None


def test_control_ids_are_deterministic_short_and_distinct() -> None:
    ids = {batch_control_id("gw", "e", seq) for seq in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 20 for i in ids)
    assert batch_control_id("gw", "e", 5) == batch_control_id("gw", "e", 5) != batch_control_id("gw", "f", 5)
    assert alert_control_id("vb-abc") == alert_control_id("vb-abc") != alert_control_id("vb-abd")
    assert export_control_id("p", "d", 1, 2, 3) != export_control_id("p", "d", 1, 2, 4)


def alert(**overrides: object) -> AlertSummary:
    values: dict[str, object] = {"id": 7, "patient": "p1", "rule": "spo2_low", "metric": "spo2", "severity": "urgent",
                                 "state": "firing", "message": "SpO2 below 90 % for 5 min", "purpose": "fire",
                                 "fired_at": dt.datetime(2026, 12, 2, 8, 30, tzinfo=dt.UTC), "episodes": 1,
                                 "late": False}
    values.update(overrides)
    return AlertSummary(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("state", "purpose", "phase", "alarm_state"), [
    ("firing", "fire", "start", "active"),
    ("firing", "repeat", "continue", "active"),
    ("acknowledged", "escalate", "continue", "active"),
    ("resolved", "fire", "end", "inactive"),
])
def test_an_alert_becomes_a_pcd04_report(state: str, purpose: str, phase: str, alarm_state: str) -> None:
    text = build_oru_r40(AlertReport("VAabc", T0, "p1", [alert(state=state, purpose=purpose),
                                                         alert(id=8, metric="", severity="critical")]))
    message = hl7.parse(text)
    assert str(message.segment("MSH")(9)) == "ORU^R40^ORU_R01"
    assert str(message.segment("MSH")(21)).startswith("IHE_PCD_ACM_001^")
    first, second = message.segments("OBR")
    assert component(first, 3, 1) == "alert-7" and component(first, 4, 2) == "MDC_EVT_ALARM"
    assert component(second, 3, 1) == "alert-8"
    obx = message.segments("OBX")
    values = {component(o, 3, 2): str(message.unescape(str(o(5)))) for o in obx[:5]}
    assert values["MDC_EVT_ALARM"] == "spo2_low: SpO2 below 90 % for 5 min"
    assert values["MDC_ATTR_EVENT_PHASE"] == phase and values["MDC_ATTR_ALARM_STATE"] == alarm_state
    assert ("MDC_ATTR_ALARM_INACTIVATION_STATE" in values) == (state == "acknowledged")
    assert str(obx[0](8)) == "PM~SP" and str(obx[0](14)) == "20261202083000.0000+0000"
    assert "150456" in str(obx[1](5))  # the source metric's MDC code
    assert parse_message(text, find_groups=True).validate()


def test_an_alert_report_needs_alerts() -> None:
    with pytest.raises(ValueError, match="no alert"):
        build_oru_r40(AlertReport("VAabc", T0, "p1", []))


def test_hl7_time_keeps_a_tenth_of_a_millisecond() -> None:
    assert hl7_time(0) == "19700101000000.0000+0000"
    assert hl7_time(T0) == "20251202154500.1234+0000"


# -- properties ------------------------------------------------------------------------------------
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(finite)
def test_format_value_is_an_nm_that_reads_back_as_the_same_float(value: float) -> None:
    text = format_value(value)
    assert text is not None and "e" not in text.lower() and float(text) == value


ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
times = st.integers(0, 4_102_444_800 * 10**9)  # 1970 .. 2100


@settings(max_examples=60, deadline=None)
@given(patient=ids, device=ids, gateway=ids,
       rows=st.lists(st.tuples(st.sampled_from(numeric_metrics()), times, finite), min_size=1, max_size=15))
def test_any_values_and_ids_make_a_message_that_parses_and_gives_them_back(
        patient: str, device: str, gateway: str, rows: list[tuple[str, int, float]]) -> None:
    samples = [Sample(metric, time_ns, value) for metric, time_ns, value in rows]
    text = build_oru_r01(report(samples, patient=patient, device=device, gateway=gateway))
    assert text.encode("utf-8").decode("utf-8") == text  # travels as UTF-8 (MSH-18)
    message = hl7.parse(text)
    assert str(message.unescape(component(message.segment("PID"), 3, 1))) == patient
    obx = message.segments("OBX")[1:]
    assert len(obx) == len(samples)
    expected = sorted(samples, key=lambda s: s.time_ns)
    got = [(str(o(14)), float(str(o(5))), str(message.unescape(component(o, 18, 1)))) for o in obx]
    assert sorted(got) == sorted((hl7_time(s.time_ns), s.value, device) for s in expected)
    codes = {CATALOGUE[m].mdc_ref or m for m, _, _ in rows}
    assert {component(o, 3, 2) if component(o, 3, 3) == "MDC" else component(o, 3, 1) for o in obx} == codes


def test_every_numeric_metric_is_in_the_list_and_no_waveform_is() -> None:
    assert set(numeric_metrics()) == {n for n, m in CATALOGUE.items() if m.kind is MetricKind.NUMERIC}
