"""Nonin Data Format #2 and Masimo ASCII 1: byte-literal vectors, encoder round trips, fuzzing."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import DecodeContext, DecodeError, DecodeResult, default_registry, load_library
from device_profiles.serial import decode_masimo_ascii1, decode_nonin_df2_packet
from simulators.devices.serial_encode import NoninStatus, encode_masimo_ascii1, encode_nonin_df2_packet
from vitalbridge.cli import main
from vitals.samples import Quality, Sample

T = 1_700_000_000_000_000_000
LINE = (b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% "
        b"DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800")


def test_masimo_line_from_the_manual_decodes_whole() -> None:
    assert decode_masimo_ascii1(LINE, DecodeContext(T)) == DecodeResult(
        samples=(Sample("spo2", T, 98.0), Sample("pulse_rate", T, 97.0), Sample("perfusion_index", T, 3.6)),
        status={"device_time": "02/22/16 22:47:45", "alarm": 0, "exceptions": ["set_mode"],
                "serial_number": "0000056661", "spco_percent": None, "spmet_percent": None},
    )


def test_masimo_encoder_reproduces_the_manual_line() -> None:
    encoded = encode_masimo_ascii1(dt.datetime(2016, 2, 22, 22, 47, 45), spo2=98, pulse_rate=97,
                                   perfusion_index=3.6, serial_number="0000056661")
    assert encoded == LINE + b"\r\n"


def test_masimo_exceptions_set_quality() -> None:
    line = encode_masimo_ascii1(dt.datetime(2020, 1, 1), spo2=90, pulse_rate=50,
                                exceptions=["pulse_search", "interference", "set_mode"]).rstrip()
    result = decode_masimo_ascii1(line, DecodeContext(1))
    flags = int(Quality.LOW_SIGNAL_QUALITY | Quality.DEVICE_QUESTIONABLE)
    assert result.samples == (Sample("spo2", 1, 90.0, flags), Sample("pulse_rate", 1, 50.0, flags))
    assert result.status["exceptions"] == ["pulse_search", "interference", "set_mode"]


@pytest.mark.parametrize("line, message", [
    (b"", "starts with"),
    (b"02/22/16 22:47:45 SN=1 BPM=097", "no SPO2"),
    (b"02/22/16 22:47:45 SPO2=9x% BPM=097", "not a number"),
    (b"02/22/16 22:47:45 SPO2=098% BPM=097 EXC=zz", "hexadecimal"),
    (b"02/22/16 22:47:45 SPO2=098% BPM=097 junk", "unexpected token"),
])
def test_masimo_rejects_malformed_lines(line: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_masimo_ascii1(line, DecodeContext(0))


PLETH = [128, 140, 160, 185, 205, 220, 228, 230, 226, 215, 200, 185, 172, 162, 156, 152,
         150, 148, 145, 141, 137, 133, 130, 128, 127]


def test_nonin_packet_bytes_are_exact() -> None:
    packet = encode_nonin_df2_packet(PLETH, pulse_rate=72, spo2=97)
    assert packet[:15] == bytes.fromhex("0183800004" "01828C4857" "0182A06184")
    assert len(packet) == 125


def test_nonin_packet_decodes_whole() -> None:
    status = [NoninStatus()] * 25
    status[3] = NoninStatus(artifact=True)
    packet = encode_nonin_df2_packet(PLETH, pulse_rate=300, spo2=None, status=status, pulse_rate_8_beat=299)
    result = decode_nonin_df2_packet(packet, DecodeContext(T))
    period = 1e9 / 75
    expected_ppg = tuple(
        Sample("ppg", T - round((24 - i) * period), float(v), int(Quality.ARTIFACT if i == 3 else Quality.OK))
        for i, v in enumerate(PLETH)
    )
    assert result == DecodeResult(
        samples=(*expected_ppg, Sample("pulse_rate", T, 300.0)),
        status={"sensor_disconnected": False, "artifact": True, "out_of_track": False, "sensor_alarm": False,
                "perfusion": "green", "firmware_revision": 0x2C, "stat2": 0, "spo2_fast": None,
                "spo2_beat_to_beat": None, "pulse_rate_8_beat": 299, "spo2_8_beat": None},
        notes=("spo2: no data (127)",),
    )


@pytest.mark.parametrize("index, value, message", [
    (0, 0x02, "start byte"), (1, 0x03, "status bit 7"), (4, 0x00, "checksum"), (6, 0x83, "SYNC bit set"),
])
def test_nonin_rejects_corrupted_frames(index: int, value: int, message: str) -> None:
    packet = bytearray(encode_nonin_df2_packet(PLETH, pulse_rate=72, spo2=97))
    packet[index] = value
    if index == 6:  # keep the checksum right so the SYNC check is what fails
        packet[9] = sum(packet[5:9]) & 0xFF
    with pytest.raises(DecodeError, match=message):
        decode_nonin_df2_packet(bytes(packet), DecodeContext(0))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 510), st.one_of(st.none(), st.integers(0, 126)),
       st.lists(st.integers(0, 255), min_size=25, max_size=25))
def test_nonin_encoder_and_profile_agree(rate: int, spo2: int | None, pleth: list[int]) -> None:
    profile = load_library()["nonin.xpod"]
    framer = profile.make_framer()
    [frame] = framer.feed(encode_nonin_df2_packet(pleth, pulse_rate=rate, spo2=spo2))
    result = profile.decoder_for(frame.name, default_registry(load_entry_points=False))(frame.payload,
                                                                                      DecodeContext(T))
    by_metric = {s.metric: s.value for s in result.samples if s.metric != "ppg"}
    assert by_metric.get("pulse_rate") == float(rate)
    assert by_metric.get("spo2") == (None if spo2 is None else float(spo2))
    assert [s.value for s in result.samples if s.metric == "ppg"] == [float(v) for v in pleth]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=140), st.binary(min_size=125, max_size=125),
                 st.text(alphabet="0123456789/:.-%+= ABCDEFGHIKLMNOPSTX", max_size=120).map(str.encode)))
def test_any_bytes_give_a_result_or_decode_error(payload: bytes) -> None:
    for decoder in (decode_nonin_df2_packet, decode_masimo_ascii1):
        with contextlib.suppress(DecodeError):
            assert isinstance(decoder(payload, DecodeContext(0)), DecodeResult)


def test_cli_decodes_a_serial_capture(capsys: pytest.CaptureFixture[str]) -> None:
    capture = b"BPM=0\r\n" + LINE + b"\r\n"  # starts mid-line, as captures do
    assert main(["profiles", "decode", "masimo.rad8", capture.hex(), "--received-ns", "9"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        '{"metric": "spo2", "value": 98.0, "unit": "%", "time_ns": 9, "quality": 0, "source": "ascii1"}',
        '{"metric": "pulse_rate", "value": 97.0, "unit": "/min", "time_ns": 9, "quality": 0, "source": "ascii1"}',
        '{"metric": "perfusion_index", "value": 3.6, "unit": "%", "time_ns": 9, "quality": 0, "source": "ascii1"}',
    ]
    assert "starts with MM/DD/YY" in captured.err
    assert main(["profiles", "decode", "masimo.rad8", "4250 4D3D 300D 0A"]) == 1
