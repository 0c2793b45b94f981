"""SenML (RFC 8428) inbound: base fields, names, units, the content key, and untrusted bytes.

Any bytes give a Batch or SenmlError; generated valid packs decode to exactly the samples they
carry, in JSON and in CBOR alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vitals._senml_units import METRIC_UNITS, UNIT_CONVERSIONS, conversion_for
from vitals.catalogue import CATALOGUE
from vitals.samples import Batch, Sample
from vitals.senml import (
    CBOR_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    SENML_LABELS,
    SenmlError,
    accepted_units,
    decode_senml,
    encode_senml_cbor,
    encode_senml_json,
    is_senml_epoch,
    resolve_metric,
)

S = 10**9
NOW = 1_800_000_000 * S
GW = "gw-3rd"


def _decode(records: list[dict[str, Any]], now_ns: int = NOW, form: str = "json") -> Batch:
    payload = encode_senml_json(records) if form == "json" else encode_senml_cbor(records)
    return decode_senml(payload, gateway=GW, now_ns=now_ns)


def _samples(batch: Batch) -> list[Sample]:
    return [sample for stream in batch.streams for sample in stream.samples()]


def _error(payload: bytes, **kwargs: Any) -> str:
    with pytest.raises(SenmlError) as caught:
        decode_senml(payload, gateway=kwargs.pop("gateway", GW), now_ns=NOW, **kwargs)
    return str(caught.value)


# ---------------------------------------------------------------------------------------------------
# Base fields (the RFC 8428 section 5 examples, named after catalogue metrics)
# ---------------------------------------------------------------------------------------------------

_T0 = 1_276_020_076  # RFC 8428 section 5.1.3's base time


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        # 5.1.1: one datapoint, no time: it was measured "now".
        ([{"n": "pt-1:thermo-1:body_temperature", "u": "Cel", "v": 36.6}],
         [Sample("body_temperature", NOW, 36.6)]),
        # 5.1.3: a base name that is the whole name, a base unit, a base time and offsets from it.
        ([{"bn": "pt-1:thermo-1:body_temperature", "bt": _T0, "bu": "Cel", "bver": 5, "v": 36.6},
          {"t": 10, "v": 36.7}, {"t": 20, "v": 36.8}],
         [Sample("body_temperature", (_T0 + t) * S, v) for t, v in ((0, 36.6), (10, 36.7), (20, 36.8))]),
        # 5.1.2: several metrics of one device, the base name a prefix.
        ([{"bn": "pt-1:ox-1:", "bt": 1.320067464e9, "n": "spo2", "u": "%", "v": 97},
          {"n": "pulse_rate", "u": "/min", "v": 72}],
         [Sample("pulse_rate", 1_320_067_464 * S, 72.0), Sample("spo2", 1_320_067_464 * S, 97.0)]),
        # A base value added to every value; a later base field replaces the earlier one.
        ([{"bn": "pt-1:cuff-1:", "bv": 100, "bt": _T0, "n": "bp_systolic", "v": 21},
          {"n": "bp_diastolic", "bv": 70, "v": 9}, {"n": "bp_mean", "v": 23}],
         [Sample("bp_diastolic", _T0 * S, 79.0), Sample("bp_mean", _T0 * S, 93.0),
          Sample("bp_systolic", _T0 * S, 121.0)]),
        # The record's unit overrides the base unit for that record only.
        ([{"bn": "pt-1:scale-1:body_weight", "bu": "kg", "bt": _T0, "v": 70.5},
          {"u": "g", "t": 60, "v": 70600}, {"t": 120, "v": 70.7}],
         [Sample("body_weight", (_T0 + t) * S, v) for t, v in ((0, 70.5), (60, 70.6), (120, 70.7))]),
        # Relative times: negative base time and offsets count back from now; fractions kept to the us.
        ([{"bn": "pt-1:ox-1:spo2", "bt": -60, "v": 97}, {"t": 30.5, "v": 96},
          {"t": 0.0000015, "v": 95}],
         [Sample("spo2", NOW - 60 * S, 97.0), Sample("spo2", NOW - 60 * S + 2_000, 95.0),
          Sample("spo2", NOW - 29_500_000_000, 96.0)]),
        # 2**28 s is the first absolute time (1978-07-04); below it counts from now.
        ([{"bn": "pt-1:ox-1:spo2", "t": 2**28, "v": 97}, {"t": 2**28 - 1, "v": 96}],
         [Sample("spo2", 2**28 * S, 97.0), Sample("spo2", NOW + (2**28 - 1) * S, 96.0)]),
        # Records in any order: each stream comes out in time order.
        ([{"bn": "pt-1:ox-1:spo2", "bt": _T0, "t": 20, "v": 95}, {"t": 10, "v": 96}, {"t": 0, "v": 97}],
         [Sample("spo2", (_T0 + t) * S, v) for t, v in ((0, 97.0), (10, 96.0), (20, 95.0))]),
        # MDC reference ids and LOINC codes name catalogue metrics too.
        ([{"bn": "pt-1:ox-1:", "bt": _T0, "n": "MDC_PULS_OXIM_SAT_O2", "v": 97},
          {"n": "8867-4", "u": "beat/min", "v": 61}],
         [Sample("heart_rate", _T0 * S, 61.0), Sample("spo2", _T0 * S, 97.0)]),
        # Unknown labels without the trailing underscore are ignored (RFC 8428 section 4.4).
        ([{"bn": "pt-1:ox-1:spo2", "bt": _T0, "v": 97, "msgid": 17, "ut": 60, "bs": 3}],
         [Sample("spo2", _T0 * S, 97.0)]),
    ],
    ids=["one-datapoint", "base-time-offsets", "base-name-prefix", "base-value", "record-unit",
         "relative-times", "relative-limit", "any-order", "mdc-and-loinc", "ignored-labels"],
)
@pytest.mark.parametrize("form", ["json", "cbor"])
def test_base_fields_resolve_as_rfc_8428_says(records: list[dict[str, Any]], expected: list[Sample],
                                             form: str) -> None:
    batch = _decode(records, form=form)
    assert (batch.gateway, batch.seq, batch.patient, batch.profile) == (GW, 0, "pt-1", "senml")
    assert _samples(batch) == expected
    assert all(stream.unit == CATALOGUE[stream.metric].unit for stream in batch.streams)


def test_a_whole_pack_gives_the_whole_batch() -> None:
    payload = (b'[{"bn":"pt-7:cuff-2:","bt":1700000000,"bu":"mm[Hg]","n":"bp_systolic","v":128},'
               b'{"n":"bp_diastolic","v":84},{"n":"pulse_rate","u":"/min","v":66}]')
    batch = decode_senml(payload, gateway="gw-9", now_ns=NOW)
    assert batch == Batch("gw-9", 0, "pt-7", "cuff-2", "senml", batch.streams, epoch=batch.epoch)
    assert _samples(batch) == [Sample("bp_diastolic", 1_700_000_000 * S, 84.0),
                               Sample("bp_systolic", 1_700_000_000 * S, 128.0),
                               Sample("pulse_rate", 1_700_000_000 * S, 66.0)]
    assert [(s.metric, s.unit, s.rate_hz, s.scale) for s in batch.streams] == [
        ("bp_diastolic", "mm[Hg]", None, None), ("bp_systolic", "mm[Hg]", None, None),
        ("pulse_rate", "/min", None, None)]
    assert batch.epoch.startswith("senml-") and len(batch.epoch) == 38 and is_senml_epoch(batch.epoch)


def test_the_cbor_form_uses_the_integer_labels_of_section_6() -> None:
    payload = cbor2.dumps([{-2: "pt-1:ox-1:", -3: 1_700_000_000, -4: "%", -5: 90, -1: 10, 0: "spo2", 2: 7, 6: 1.5}])
    assert encode_senml_cbor([{"bn": "pt-1:ox-1:", "bt": 1_700_000_000, "bu": "%", "bv": 90, "bver": 10,
                               "n": "spo2", "v": 7, "t": 1.5}]) == payload
    assert _samples(decode_senml(payload, gateway=GW, now_ns=NOW)) == [
        Sample("spo2", 1_700_000_001_500_000_000, 97.0)]
    assert SENML_LABELS == {"bver": -1, "bn": -2, "bt": -3, "bu": -4, "bv": -5, "bs": -16, "n": 0, "u": 1,
                            "v": 2, "vs": 3, "vb": 4, "s": 5, "t": 6, "ut": 7, "vd": 8}


# ---------------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("metric", "unit", "value", "expected"),
    [
        ("body_temperature", "Cel", 36.6, 36.6),
        ("body_temperature", "[degF]", 98.6, 37.0),
        ("body_temperature", "degF", 100.4, 38.0),
        ("body_temperature", "K", 310.15, 37.0),
        ("body_weight", "kg", 70.5, 70.5),
        ("body_weight", "g", 70_500, 70.5),
        ("body_weight", "[lb_av]", 100, 45.359237),
        ("body_weight", "lb", 220.46226218, 100.0),
        ("bp_systolic", "mm[Hg]", 120, 120.0),
        ("bp_systolic", "mmHg", 120, 120.0),
        ("bp_systolic", "kPa", 16, 120.009852135),
        ("bp_diastolic", "Pa", 13_332.2387415, 100.0),
        ("bp_mean", "hPa", 133.322387415, 100.0),
        ("blood_glucose", "mmol/L", 5.5, 5.5),
        ("blood_glucose", "mol/m3", 5.5, 5.5),
        ("blood_glucose", "mg/dL", 90.078, 5.0),
        ("blood_glucose", "mg/dl", 180.156, 10.0),
        ("heart_rate", "/min", 72, 72.0),
        ("heart_rate", "1/min", 72, 72.0),
        ("heart_rate", "beat/min", 72, 72.0),
        ("heart_rate", "beats/min", 72, 72.0),
        ("pulse_rate", "Hz", 1.2, 72.0),
        ("respiratory_rate", "{breaths}/min", 16, 16.0),
        ("spo2", "%", 97, 97.0),
        ("spo2", "/", 0.97, 97.0),
        ("spo2", "1", 0.95, 95.0),
        ("spo2", "ratio", 0.9, 90.0),
        ("ecg_sqi", "%", 85, 0.85),
        ("ecg_sqi", "/", 0.85, 0.85),
        ("rr_interval", "s", 0.8, 800.0),
        ("rr_interval", "us", 800_000, 800.0),
        ("ecg", "V", 0.0012, 1.2),
        ("ecg", "uV", 1200, 1.2),
    ],
)
def test_units_are_converted_to_the_catalogue_unit(metric: str, unit: str, value: float, expected: float) -> None:
    for form in ("json", "cbor"):
        [sample] = _samples(_decode([{"n": f"pt-1:dev-1:{metric}", "t": _T0, "u": unit, "v": value}], form=form))
        assert sample.value == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_record_without_a_unit_is_in_the_catalogue_unit() -> None:
    [sample] = _samples(_decode([{"n": "pt-1:gluco-1:blood_glucose", "t": _T0, "v": 6.1}]))
    assert sample.value == 6.1


@pytest.mark.parametrize(
    ("metric", "unit", "reason"),
    [
        ("spo2", "%EL", "'%EL' is a battery's remaining energy level"),
        ("spo2", "%RH", "relative humidity"),
        ("heart_rate", "Cel", "no exact conversion from 'Cel'"),
        ("body_temperature", "mg/dL", "no exact conversion from 'mg/dL'"),
        ("bp_systolic", "bar", "no exact conversion from 'bar'"),
        ("body_weight", "mmol/L", "no exact conversion from 'mmol/L'"),
        ("spo2", "mg/dL", "no exact conversion"),  # mg/dL is glucose's only
        ("heart_rate", "", "no exact conversion from ''"),
    ],
)
def test_units_without_an_exact_conversion_are_refused_with_the_reason(metric: str, unit: str,
                                                                       reason: str) -> None:
    message = _error(encode_senml_json([{"n": f"pt-1:dev-1:{metric}", "u": unit, "v": 1}]))
    catalogue_unit = CATALOGUE[metric].unit
    assert message.startswith(f"record 0: unit {unit!r} cannot be taken for {metric} "
                              f"(catalogue unit {catalogue_unit!r}): ")
    assert reason in message
    assert f"accepted: {catalogue_unit}, " in message


def test_every_catalogue_metric_has_its_unit_and_a_senml_name() -> None:
    for name, metric in CATALOGUE.items():
        assert accepted_units(name)[0] == metric.unit
        assert metric.unit in UNIT_CONVERSIONS  # every catalogue unit has its table
        assert resolve_metric(name) is metric
        if metric.mdc_ref:
            assert resolve_metric(metric.mdc_ref) is metric
        if metric.loinc:
            assert resolve_metric(metric.loinc) is metric
    assert set(METRIC_UNITS) <= set(CATALOGUE)
    assert "mg/dL" in accepted_units("blood_glucose") and "mg/dL" not in accepted_units("spo2")


# ---------------------------------------------------------------------------------------------------
# Refusals: one clear message each
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"", "empty payload"),
        (b"[]", "the SenML pack holds no records"),
        (b'{"n":"pt-1:ox-1:spo2","v":97}', "a SenML pack is a JSON array of records, got a map"),
        (b"[1]", "record 0: a SenML record is a JSON map, got an integer"),
        (b'[{"n":"pt-1:ox-1:spo2","v":97}', "not valid SenML JSON: "),
        (b'[{"n":"pt-1:ox-1:spo2","v":NaN}]', "NaN is not a number JSON allows"),
        (b'[{"n":"pt-1:ox-1:spo2","v":1e999}]', "'v' must be a finite number"),
        (b'[{"n":"pt-1:ox-1:spo2","v":97,"v":98}]', "a record repeats the label 'v'"),
        (b'[{"n":"pt-1:ox-1:spo2","v":"97"}]', "record 0: 'v' must be a number, got text"),
        (b'[{"n":"pt-1:ox-1:spo2","v":true}]', "record 0: 'v' must be a number, got a boolean"),
        (b'[{"n":17,"v":97}]', "record 0: 'n' must be text, got an integer"),
        (b'[{"n":"pt-1:ox-1:spo2","v":97,"vb":true}]', "one value, this one 'v' and 'vb'"),
        (b'[{"n":"pt-1:ox-1:spo2","vs":"high"}]', "spo2 takes a numeric value 'v', not 'vs'"),
        (b'[{"n":"pt-1:ox-1:spo2","s":1234}]', "sums ('s') are not stored"),
        (b'[{"n":"pt-1:ox-1:spo2"}]', "record 0: no value ('v')"),
        (b'[{"v":97}]', "record 0: no name"),
        (b'[{"n":"pt-1:ox-1:spo2","v":97,"crit_":1}]', "label 'crit_' must be understood, and is not"),
        (b'[{"n":"spo2","v":97}]', "name 'spo2' is not '{patient}:{device}:{metric}'"),
        (b'[{"n":"urn:dev:ow:10e2073a01080063","v":97}]', "is not '{patient}:{device}:{metric}'"),
        (b'[{"n":"pt 1:ox-1:spo2","v":97}]', "holds characters SenML names may not"),
        (b'[{"n":"pt-1:/ox:spo2","v":97}]', "device '/ox' in name 'pt-1:/ox:spo2' is not a valid identifier"),
        (b'[{"n":"pt-1:ox-1:glucose","v":5}]', "'glucose' is no catalogue metric"),
        (b'[{"bn":"' + b"p" * 300_000 + b'","v":5},' + b"{}," * 50_000 + b"{}]",
         "record 0: name is 300000 characters long, over the 194"),
        (b'[{"bn":"pt-1:ox-1:","n":"spo2","v":97},{"bn":"pt-2:ox-1:","n":"spo2","v":97}]',
         "record 1: names patient 'pt-2', device 'ox-1', but the pack began with patient 'pt-1'"),
        (b'[{"bn":"pt-1:ox-1:spo2","t":1700000000,"v":97},{"t":1700000000,"v":96}]',
         "spo2: two values at the same time"),
        (b'[{"bver":11,"n":"pt-1:ox-1:spo2","v":97}]', "SenML version 11 is not one this build reads"),
        (b'[{"n":"pt-1:ox-1:spo2","v":97,"t":1e300}]', "lies outside the representable range"),
        (b'[{"n":"pt-1:ox-1:spo2","v":97,"t":-5e9}]', "resolves outside the representable range"),
        (b'[{"n":"pt-1:ox-1:spo2","v":' + b"9" * 30 + b"}]", "an integer too large to be a measurement"),
        (b'[{"n":"pt-1:ox-1:spo2","v":1e308,"bv":1e308}]', "not a finite number once resolved"),
        (b"\xff\xfe[]", "not valid SenML CBOR"),
        (b"[\xff]", "not UTF-8 text"),
        (cbor2.dumps({0: "pt-1:ox-1:spo2"}), "a SenML pack is a CBOR array of records, got a map"),
        (cbor2.dumps([{"n": "pt-1:ox-1:spo2", 2: 97}]), "CBOR SenML labels 'n' with the integer 0, not with text"),
        (cbor2.dumps([{0: "pt-1:ox-1:spo2", 2: 97, "x_": 1}]), "label 'x_' must be understood"),
        (cbor2.dumps([{0: "pt-1:ox-1:spo2", 2: 97, 2.5: 1}]), "a CBOR label must be an integer or text"),
        (cbor2.dumps([{0: "pt-1:ox-1:spo2", 2: b"\x61"}]), "'v' must be a number, got bytes"),
        (b"\xa0" * ((1 << 20) + 1), "byte limit"),
    ],
)
def test_what_is_wrong_is_named(payload: bytes, detail: str) -> None:
    assert detail in _error(payload)


def test_too_many_records_are_refused_before_they_are_read() -> None:
    payload = encode_senml_json([{"n": "pt-1:ox-1:spo2", "t": _T0 + i, "v": 97} for i in range(11)])
    assert "the pack carries 11 records, over the 10 allowed per message" in _error(payload, max_values=10)


def test_the_gateway_must_be_an_identifier() -> None:
    assert "gateway id 'a/b' is not a valid identifier" in _error(b"[]", gateway="a/b")


# ---------------------------------------------------------------------------------------------------
# Content type: from the MQTT 5 property, else from the first byte
# ---------------------------------------------------------------------------------------------------

_PACK = [{"bn": "pt-1:ox-1:", "bt": _T0, "n": "spo2", "u": "%", "v": 97}]


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (encode_senml_json(_PACK), None),
        (b" \r\n\t" + encode_senml_json(_PACK), None),
        (b"\xef\xbb\xbf" + encode_senml_json(_PACK), None),
        (encode_senml_json(_PACK), JSON_CONTENT_TYPE),
        (encode_senml_json(_PACK), "application/senml+json; charset=utf-8"),
        (encode_senml_json(_PACK), "application/json"),
        (encode_senml_cbor(_PACK), None),
        (encode_senml_cbor(_PACK), CBOR_CONTENT_TYPE),
        (encode_senml_cbor(_PACK), "Application/CBOR"),
        (cbor2.dumps(cbor2.CBORTag(55799, [{SENML_LABELS.get(k, k): v for k, v in _PACK[0].items()}])), None),
    ],
)
def test_json_and_cbor_are_told_apart(payload: bytes, content_type: str | None) -> None:
    batch = decode_senml(payload, gateway=GW, now_ns=NOW, content_type=content_type)
    assert _samples(batch) == [Sample("spo2", _T0 * S, 97.0)]


def test_a_content_type_that_is_not_senml_is_refused() -> None:
    assert "content type 'text/plain' is not SenML" in _error(encode_senml_json(_PACK), content_type="text/plain")
    assert "not valid SenML CBOR" in _error(encode_senml_json(_PACK), content_type=CBOR_CONTENT_TYPE)
    assert "not valid SenML JSON" in _error(encode_senml_cbor(_PACK), content_type=JSON_CONTENT_TYPE)


# ---------------------------------------------------------------------------------------------------
# The content key (dedup)
# ---------------------------------------------------------------------------------------------------

def test_the_key_is_the_packs_content_whatever_its_form() -> None:
    json_batch, cbor_batch = _decode(_PACK), _decode(_PACK, form="cbor")
    assert json_batch == cbor_batch and json_batch.epoch == cbor_batch.epoch
    reordered = b'[{"v":97.0,"u":"%","n":"spo2","bt":1276020076.0,"bn":"pt-1:ox-1:"}]'
    assert decode_senml(reordered, gateway=GW, now_ns=NOW).epoch == json_batch.epoch
    assert _decode([{**_PACK[0], "msgid": 2}]).epoch != json_batch.epoch
    assert _decode([{**_PACK[0], "v": 96}]).epoch != json_batch.epoch


def test_a_relative_pack_keeps_its_key_when_it_comes_again_later() -> None:
    pack = [{"n": "pt-1:ox-1:spo2", "t": -5, "v": 97}]
    first, again = _decode(pack, now_ns=NOW), _decode(pack, now_ns=NOW + 30 * S)
    assert first.epoch == again.epoch
    assert _samples(first) != _samples(again)  # what makes the key necessary


# ---------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------

def _batch_or_error(payload: bytes, content_type: str | None = None) -> None:
    try:
        batch = decode_senml(payload, gateway=GW, now_ns=NOW, content_type=content_type)
    except SenmlError as exc:
        assert str(exc)
    else:
        assert isinstance(batch, Batch) and batch.streams


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, JSON_CONTENT_TYPE, CBOR_CONTENT_TYPE, "x/y"]))
@example(b"[" * 100_000, None)
@example(b"\x81" * 100_000, None)
@example(b'[{"n":"a:b:spo2","v":1,"t":1e-400}]', None)
def test_any_bytes_give_a_batch_or_one_clear_error(payload: bytes, content_type: str | None) -> None:
    _batch_or_error(payload, content_type)


_LABEL_NAMES = sorted(SENML_LABELS)
_NAMES = st.sampled_from(["pt-1:ox-1:spo2", "pt-1:ox-1:", "spo2", "heart_rate", "pt-1:", "ox-1:", ":", "",
                          "MDC_ECG_HEART_RATE", "a:b:c:d", "pt-1:ox-1:8867-4"])
_UNITS = st.sampled_from(["%", "/", "Cel", "[degF]", "kPa", "mg/dL", "%EL", "", "1/min", "kg", "lb"])
_NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.sampled_from([0, -1, 2**28, 2**28 - 1, 1e9]))
_JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=8)),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                        max_size=3), max_leaves=6)


def _field_value(label: str) -> st.SearchStrategy[Any]:
    if label in ("n", "bn"):
        return _NAMES | _JSON_VALUES
    if label in ("u", "bu"):
        return _UNITS | _JSON_VALUES
    return _NUMBERS | _JSON_VALUES


_RECORDS = st.lists(st.sets(st.sampled_from([*_LABEL_NAMES, "x", "x_", "msgid"]), max_size=6)
                    .flatmap(lambda keys: st.fixed_dictionaries({k: _field_value(k) for k in sorted(keys)})),
                    max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_RECORDS | _JSON_VALUES)
def test_hostile_structures_give_a_batch_or_one_clear_error_in_both_forms(raw: Any) -> None:
    _batch_or_error(json.dumps(raw).encode())
    if isinstance(raw, list) and all(isinstance(record, dict) for record in raw):
        _batch_or_error(encode_senml_cbor(raw))
    else:
        _batch_or_error(cbor2.dumps(raw))


_METRICS = sorted(CATALOGUE)
_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)


@st.composite
def _packs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Sample]]:
    """A valid pack with absolute times and the samples it carries (values exact in binary)."""
    patient, device = draw(_IDS), draw(_IDS)
    readings: dict[tuple[str, int], float] = {}
    for _ in range(draw(st.integers(1, 12))):
        metric = draw(st.sampled_from(_METRICS))
        micros = draw(st.integers(2**28 * 10**6, 2**31 * 10**6 - 1))  # below 2**31 s the us survive floats
        readings[(metric, micros)] = draw(st.integers(-2**20, 2**20)) / 8
    base_name = draw(st.sampled_from(["", f"{patient}:", f"{patient}:{device}:"]))
    base_us = draw(st.sampled_from([0, 2**28 * 10**6, min(micros for _, micros in readings)]))
    base_value = draw(st.sampled_from([None, 0.0, 100.0, -2.5]))
    records: list[dict[str, Any]] = []
    for index, ((metric, micros), value) in enumerate(draw(st.permutations(sorted(readings.items())))):
        record: dict[str, Any] = {"n": f"{patient}:{device}:{metric}"[len(base_name):]}
        if index == 0:
            record["bn"] = base_name
            if base_us:
                record["bt"] = base_us / 10**6
            if base_value is not None:
                record["bv"] = base_value
        record["t"] = (micros - base_us) / 10**6
        record["v"] = value - (base_value or 0.0)
        if draw(st.booleans()):
            record["u"] = CATALOGUE[metric].unit
        records.append(record)
    expected = [Sample(metric, micros * 1000, value) for (metric, micros), value in sorted(readings.items())]
    return records, expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_packs())
def test_valid_packs_give_their_samples_alike_in_json_and_cbor(pack: tuple[list[dict[str, Any]], list[Sample]]) -> None:
    records, expected = pack
    json_batch = decode_senml(encode_senml_json(records), gateway=GW, now_ns=NOW)
    cbor_batch = decode_senml(encode_senml_cbor(records), gateway=GW, now_ns=NOW)
    assert json_batch == cbor_batch
    assert _samples(json_batch) == expected
    assert [stream.metric for stream in json_batch.streams] == sorted({sample.metric for sample in expected})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_METRICS).flatmap(lambda metric: st.tuples(st.just(metric),
                                                                   st.sampled_from(accepted_units(metric)))),
       st.floats(-1e6, 1e6))
def test_every_accepted_unit_converts_back_to_the_catalogue_value(metric_unit: tuple[str, str], value: float) -> None:
    metric, unit = metric_unit
    catalogue_unit = CATALOGUE[metric].unit
    found = conversion_for(metric, catalogue_unit, unit) or (1.0, 0.0)
    scale, offset = found
    sent = (value - offset) / scale  # the value in ``unit`` that means ``value`` in the catalogue unit
    [sample] = _samples(_decode([{"n": f"p:d:{metric}", "t": _T0, "u": unit, "v": sent}]))
    assert math.isclose(sample.value, value, rel_tol=1e-9, abs_tol=1e-6)


def test_the_worked_examples_of_the_interoperability_guide_hold() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "interoperability.md").read_text()
    at = 1_767_261_900 * S  # 2026-01-01T10:05:00Z
    as_json = (b'[{"bn":"p-1001:cuff-7:","bt":1767261600,"bu":"kPa","n":"bp_systolic","v":17.2},\n'
               b' {"n":"bp_diastolic","v":10.8},\n {"n":"MDC_PULS_OXIM_PULS_RATE","u":"beat/min","v":68}]')
    assert as_json.decode() in guide
    cuff = decode_senml(as_json, gateway="acme-hub-1", now_ns=at)
    assert f"`{cuff.epoch}`" in guide
    assert [(s.metric, s.value) for s in _samples(cuff)] == [
        ("bp_diastolic", 81.0066501913), ("bp_systolic", 129.010591045), ("pulse_rate", 68.0)]
    records = [{"bn": "p-1001:thermo-2:body_temperature", "bu": "[degF]", "t": -120, "v": 99.5},
               {"t": -60, "v": 99.3}]
    assert encode_senml_json(records).decode() in guide
    as_cbor = encode_senml_cbor(records)
    assert f"({len(as_cbor)} bytes)" in guide
    thermo = decode_senml(as_cbor, gateway="acme-hub-1", now_ns=at)
    assert f"`{thermo.epoch}`" in guide
    assert _samples(thermo) == [Sample("body_temperature", at - 120 * S, 37.5),
                                Sample("body_temperature", at - 60 * S, 37.3888888889)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_packs(), st.sampled_from(["json", "cbor"]), st.data())
def test_mutated_valid_packs_give_a_batch_or_one_clear_error(pack: tuple[list[dict[str, Any]], list[Sample]],
                                                            form: str, data: st.DataObject) -> None:
    payload = bytearray(encode_senml_json(pack[0]) if form == "json" else encode_senml_cbor(pack[0]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(payload) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            payload[at] = data.draw(st.integers(0, 255))
        elif action == "drop" and len(payload) > 1:
            del payload[at]
        else:
            payload.insert(at, data.draw(st.integers(0, 255)))
    _batch_or_error(bytes(payload))
