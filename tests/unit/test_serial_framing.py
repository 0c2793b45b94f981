"""Streaming framers: whole frames out, garbage skipped and counted, the same whatever the chunking."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.serial import BinaryFramer, ByteTest, Frame, FrameMatcher, LineFramer, build_framer, checksum8
from simulators.devices.serial_encode import encode_nonin_df2_packet

ANY = [FrameMatcher("line")]


def nmea(body: bytes) -> bytes:
    return b"$" + body + b"*" + f"{checksum8(body, 'xor8'):02X}".encode() + b"\r\n"


def test_checksums() -> None:
    assert checksum8(b"GPGLL,5300.97914,N,00259.98174,E,125926,A", "xor8") == 0x28
    assert checksum8(b"\x01\x82\x8c\x48", "sum8") == 0x57
    assert checksum8(b"\x01\x02", "twos_complement8") == 0xFD


def test_line_framer_with_nmea_checksum_drops_bad_lines() -> None:
    framer = LineFramer([FrameMatcher("gll", b"$GPGLL"), FrameMatcher("other")], checksum="xor8", skip_prefix=b"$")
    good = nmea(b"GPGLL,5300.97914,N,00259.98174,E,125926,A")
    assert good.endswith(b"*28\r\n")
    bad = b"$GPGLL,1*00\r\n"
    frames = framer.feed(b"\r\n" + bad + good + nmea(b"XY"))
    assert frames == [Frame("gll", b"$GPGLL,5300.97914,N,00259.98174,E,125926,A"), Frame("other", b"$XY")]
    assert (framer.discarded_bytes, framer.bad_checksums) == (len(bad), 1)


def test_line_framer_sum8_and_unmatched_and_overlong() -> None:
    framer = LineFramer([FrameMatcher("v", b"V=")], checksum="sum8", separator=b";", max_length=16)
    body = b"V=42"
    line = body + b";" + f"{sum(body) & 0xFF:02x}".encode() + b"\n"
    frames = framer.feed(b"W=1;" + f"{sum(b'W=1') & 0xFF:02X}".encode() + b"\n" + b"x" * 40 + b"\n" + line)
    assert frames == [Frame("v", b"V=42")]
    assert framer.unmatched_frames == 1
    assert framer.discarded_bytes == 41


def test_binary_framer_with_length_field_resyncs_after_garbage() -> None:
    # AA 55 | len (total) | payload... | xor of everything before it
    def frame(payload: bytes) -> bytes:
        head = b"\xaa\x55" + bytes([len(payload) + 4]) + payload
        return head + bytes([checksum8(head, "xor8")])

    framer = BinaryFramer([FrameMatcher("f")], sync=b"\xaa\x55", field_offset=2, max_length=16, checksum="xor8")
    one, two = frame(b"\x01\x02"), frame(b"")
    corrupted = one[:-1] + b"\x00"
    frames = framer.feed(b"\x00\xaa" + corrupted + b"\xaa\x55\xff" + one + two)
    assert frames == [Frame("f", one), Frame("f", two)]
    assert framer.discarded_bytes == 2 + len(corrupted) + 3
    assert framer.bad_checksums == 1


NONIN_FRAMING = {
    "kind": "binary", "sync": "01", "length": {"fixed": 5}, "checksum": {"algorithm": "sum8"},
    "require": [{"offset": 1, "mask": 0x80, "value": 0x80}],
    "group": {"count": 25, "first": {"offset": 1, "mask": 1, "value": 1}},
}
PACKET = encode_nonin_df2_packet(list(range(100, 125)), pulse_rate=72, spo2=97)


def test_grouped_frames_come_out_as_whole_packets() -> None:
    framer = build_framer(NONIN_FRAMING, [{"name": "df2_packet"}])
    stream = PACKET[-10:] + b"\x01\x01\x80" + PACKET + PACKET[:50]
    assert framer.feed(stream) == [Frame("df2_packet", PACKET)]
    assert framer.discarded_bytes == 13
    assert framer.feed(PACKET[50:]) == [Frame("df2_packet", PACKET)]


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _run(framing: dict[str, object], chunks: list[bytes]) -> tuple[list[Frame], int]:
    framer = build_framer(framing, [{"name": "x"}])
    frames = [f for chunk in chunks for f in framer.feed(chunk)]
    return frames, framer.discarded_bytes


STREAMS = st.lists(
    st.one_of(st.binary(max_size=12), st.just(PACKET), st.just(PACKET[:30]), st.just(b"V=1*5B\r\n")),
    max_size=6,
).map(b"".join)

LINE_FRAMING = {"kind": "line", "terminator": "\r\n", "max_length": 16,
                "checksum": {"algorithm": "xor8", "separator": "*"}}
LENGTH_FRAMING = {"kind": "binary", "sync": "AA55", "length": {"field_offset": 2, "max": 12},
                  "checksum": {"algorithm": "sum8", "first": 2}}


@settings(max_examples=150, deadline=None)
@given(STREAMS, st.lists(st.integers(min_value=0), max_size=8))
def test_same_frames_and_discards_whatever_the_chunking(data: bytes, cuts: list[int]) -> None:
    for framing in (NONIN_FRAMING, LINE_FRAMING, LENGTH_FRAMING):
        whole = _run(framing, [data])
        assert _run(framing, _chunked(data, cuts)) == whole
        assert _run(framing, [bytes([b]) for b in data]) == whole


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_frames_plus_discards_never_exceed_the_input(data: bytes) -> None:
    for framing in (NONIN_FRAMING, LENGTH_FRAMING):
        frames, discarded = _run(framing, [data])
        assert sum(len(f.payload) for f in frames) + discarded <= len(data)


def test_byte_test() -> None:
    assert ByteTest(1, 0x80, 0x80).holds(b"\x01\x81")
    assert not ByteTest(5, 0x80, 0x80).holds(b"\x01\x81")
