"""A vendor adds a fixed-layout device with YAML alone; the layout decoder is exact and total."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import DecodeContext, DecodeError, DecodeResult, check_examples, default_registry, load_library
from device_profiles.layout import parse_layout
from vitalbridge.cli import main
from vitals.samples import Quality, Sample

# A made-up vendor thermometer: flags, temperature in 0.01 degC (s16 LE), optional battery byte
# (flag bit 0), optional SFLOAT pulse rate (flag bit 1) packed after it.
ACME_THERMO = """\
schema_version: 1
id: acme.thermo1
vendor: Acme Medical
model: Thermo 1
device_kind: thermometer
source:
  document: Acme Thermo 1 BLE interface description, revision 3, section 4.2
streams:
  body_temperature: {unit: Cel, value_type: float, scale: 0.01, range: [30, 43]}
  pulse_rate: {unit: /min, value_type: float}
transport:
  ble:
    match:
      names: ["ACME-T1-*"]
      service_uuids: ["6e400001-b5a3-f393-e0a9-e50e24dcca9e"]
    characteristics:
      - name: reading
        service: "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
        uuid: "6e400003-b5a3-f393-e0a9-e50e24dcca9e"
        mode: notify
        layout:
          fields:
            - {name: flags, type: u8, offset: 0}
            - {name: temperature, type: s16, offset: 1, endian: little, metric: body_temperature, invalid: [0x7FFF]}
            - {name: battery, type: u8, status: battery_percent, present_if: {field: flags, bit: 0}}
            - {name: pulse, type: sfloat, metric: pulse_rate, present_if: {field: flags, bit: 1}}
examples:
  - description: 36.94 degC, battery 90 %
    hex: "01 6E0E 5A"
    expect:
      samples:
        - {metric: body_temperature, value: 36.94, time_offset_ns: 0}
      status: {battery_percent: 90}
  - description: 36.60 degC, no battery byte, pulse 72 /min
    hex: "02 4C0E 4800"
    expect:
      samples:
        - {metric: body_temperature, value: 36.6}
        - {metric: pulse_rate, value: 72}
      status: {}
  - description: no reading yet (0x7FFF)
    hex: "00 FF7F"
    expect:
      samples: []
      notes: ["body_temperature: no value"]
  - description: battery flag set but byte missing
    hex: "01 6E0E"
    expect:
      error: "field 'battery' needs bytes 3..3"
"""


def test_vendor_adds_a_fixed_layout_device_with_yaml_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "acme" / "thermo1.yaml"
    path.parent.mkdir()
    path.write_text(ACME_THERMO, encoding="utf-8")

    assert main(["profiles", "validate", str(path)]) == 0
    assert "ok (acme.thermo1, 4 example(s)" in capsys.readouterr().out

    profile = load_library([tmp_path])["acme.thermo1"]
    registry = default_registry(load_entry_points=False)
    assert check_examples(profile, registry) == []
    assert profile.ble is not None and profile.ble.matches("ACME-T1-0042", [])
    assert profile.ble.matches(None, ["6E400001-B5A3-F393-E0A9-E50E24DCCA9E"])
    assert not profile.ble.matches("OTHER", ["180d"])
    decode = profile.decoder_for("6e400003-b5a3-f393-e0a9-e50e24dcca9e", registry)
    assert decode(bytes.fromhex("03 D20F 50 4800"), DecodeContext(1_000)) == DecodeResult(
        samples=(
            Sample("body_temperature", 1_000, 40.5, int(Quality.OK)),
            Sample("pulse_rate", 1_000, 72.0),
        ),
        status={"battery_percent": 80},
    )
    # Out of the declared device range: kept, flagged, explained.
    hot = decode(bytes.fromhex("00 D411"), DecodeContext(7))
    assert hot.samples == (Sample("body_temperature", 7, 45.64, int(Quality.DEVICE_QUESTIONABLE)),)
    assert hot.notes == ("body_temperature: 45.64 Cel outside the device range 30..43",)

    assert main(["profiles", "decode", "acme.thermo1", "01 6E0E 5A", "--received-ns", "5",
                 "--profile-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ['{"metric": "body_temperature", "value": 36.94, "unit": "Cel", "time_ns": 5, '
                   '"quality": 0, "source": "reading"}']


LAYOUT = parse_layout({
    "fields": [
        {"name": "flags", "type": "u8"},
        {"name": "a", "type": "u24", "offset": 1, "endian": "big", "metric": "body_weight"},
        {"name": "b", "type": "s24", "metric": "ecg", "present_if": {"field": "flags", "mask": 6, "equals": 2}},
        {"name": "c", "type": "float", "metric": "body_temperature", "present_if": {"field": "flags", "bit": 3}},
        {"name": "d", "type": "f32", "endian": "big", "metric": "spo2", "present_if": {"field": "flags", "bit": 4}},
        {"name": "e", "type": "s32", "status": "counter", "present_if": {"field": "flags", "bit": 5}},
    ]
})


def test_every_field_type_and_gate() -> None:
    payload = bytes.fromhex("3A" "0186A0" "FEFFFF" "6E0100FF" "42C20000" "FFFFFFFF")
    assert LAYOUT(payload, DecodeContext(3)) == DecodeResult(
        samples=(Sample("body_weight", 3, 100000.0), Sample("ecg", 3, -2.0),
                 Sample("body_temperature", 3, 36.6), Sample("spo2", 3, 97.0)),
        status={"counter": -1},
    )
    # mask 6 == 4: field b absent, so c follows a directly.
    assert LAYOUT(bytes.fromhex("0C" "000001" "FFFF7F00"), DecodeContext(0)) == DecodeResult(
        samples=(Sample("body_weight", 0, 1.0),), notes=("body_temperature: no value (NaN) in field 'c'",)
    )


def test_trailing_bytes_are_an_error_unless_allowed() -> None:
    with pytest.raises(DecodeError, match="layout ends at byte 4"):
        LAYOUT(bytes.fromhex("00 000001 00"), DecodeContext(0))
    lenient = parse_layout({"allow_trailing_bytes": True, "fields": [{"name": "x", "type": "u8", "metric": "spo2"}]})
    assert lenient(b"\x61\x00\x00", DecodeContext(0)).samples == (Sample("spo2", 0, 97.0),)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=24))
def test_any_bytes_give_a_result_or_decode_error(payload: bytes) -> None:
    try:
        result = LAYOUT(payload, DecodeContext(0))
    except DecodeError:
        return
    assert isinstance(result, DecodeResult)
