"""The cloud's end-to-end acknowledgement: exact bytes, round trips, untrusted input -> StoredAck or AckError."""

from __future__ import annotations

import warnings
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vitals.acks import ACK_VERSION, MAX_ACK_SEQS, AckError, StoredAck, decode_ack, encode_ack, seq_ranges
from vitals.topics import ack_topic

_ID_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
epochs = st.one_of(
    st.just(""),
    st.builds(lambda first, rest: first + rest, st.sampled_from(_ID_FIRST),
              st.text(alphabet=_ID_FIRST + "_.-", max_size=63)),
)
seq_sets = st.one_of(
    st.frozensets(st.integers(0, 2**63 - 1), max_size=40),
    st.frozensets(st.integers(0, 300), max_size=200),  # dense: long ranges
)


@st.composite
def acks(draw: st.DrawFn) -> StoredAck:
    stored = draw(seq_sets)
    refused = draw(seq_sets) - stored
    return StoredAck(draw(epochs), tuple(sorted(stored)), tuple(sorted(refused)))


def _decode_quietly(payload: Any) -> StoredAck | None:
    """Decode; the StoredAck or None on AckError. Anything else, and any warning, fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ack = decode_ack(payload)
        except AckError as exc:
            assert str(exc), "an AckError must say what is wrong"
            ack = None
    assert not caught, f"decode_ack emitted warnings: {[str(w.message) for w in caught]}"
    return ack


def test_exact_bytes_and_topic() -> None:
    ack = StoredAck("0a1b2c3d4e5f6071", stored=(3, 4, 5, 9), refused=(7,))
    payload = encode_ack(ack)
    assert cbor2.loads(payload) == {"v": ACK_VERSION, "ep": "0a1b2c3d4e5f6071", "ok": [[3, 5], [9, 9]],
                                    "no": [[7, 7]]}
    assert payload == bytes.fromhex("a4617601626570703061316232633364346535663630373162") + \
        bytes.fromhex("6f6b82820305820909626e6f81820707")
    assert decode_ack(payload) == ack
    assert ack.seqs == (3, 4, 5, 7, 9)
    assert ack_topic("home-1") == "vb/v1/home-1/cmd/ack"


def test_seq_ranges_fold_unsorted_repeated_numbers() -> None:
    assert seq_ranges([5, 1, 2, 2, 3, 9, 8]) == [[1, 3], [5, 5], [8, 9]]
    assert seq_ranges([]) == []


@settings(max_examples=200, deadline=None)
@given(acks())
def test_round_trip(ack: StoredAck) -> None:
    assert decode_ack(encode_ack(ack)) == ack


def test_encode_refuses_a_bad_epoch_and_too_many_numbers() -> None:
    with pytest.raises(ValueError, match="epoch"):
        encode_ack(StoredAck("not an id"))
    with pytest.raises(ValueError, match="split it"):
        encode_ack(StoredAck("e", stored=tuple(range(MAX_ACK_SEQS)), refused=(MAX_ACK_SEQS,)))
    assert len(decode_ack(encode_ack(StoredAck("e", stored=tuple(range(MAX_ACK_SEQS))))).stored) == MAX_ACK_SEQS


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
@example(b"")
@example(b"\xa0")
@example(b"\x9f" * 2000)
@example(b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\xd8\x1c\x81\xd8\x1d\x00")
def test_any_bytes_decode_or_raise_ack_error(payload: bytes) -> None:
    _decode_quietly(payload)


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acks(), st.data())
def test_valid_structure_with_a_field_replaced_decodes_or_raises_ack_error(ack: StoredAck,
                                                                            data: st.DataObject) -> None:
    raw = cbor2.loads(encode_ack(ack))
    key = data.draw(st.sampled_from(["v", "ep", "ok", "no", "zz"]))
    if data.draw(st.booleans()):
        raw.pop(key, None)
    else:
        raw[key] = data.draw(cbor_values)
    _decode_quietly(cbor2.dumps(raw))


@settings(max_examples=200, deadline=None)
@given(acks(), st.data())
def test_mutated_bytes_decode_or_raise_ack_error(ack: StoredAck, data: st.DataObject) -> None:
    mutated = bytearray(encode_ack(ack))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    _decode_quietly(bytes(mutated))


def test_a_few_bytes_cannot_claim_billions_of_numbers() -> None:
    # 4,096 ranges of 2**20 numbers each fit in 45 kB; expanded they would be 4.3 billion ints.
    ranges = [[k << 20, (k << 20) + (1 << 20) - 1] for k in range(4096)]
    payload = cbor2.dumps({"v": 1, "ep": "e", "ok": ranges, "no": []})
    with pytest.raises(AckError, match=f"at most {MAX_ACK_SEQS} sequence numbers"):
        decode_ack(payload)
    half = MAX_ACK_SEQS // 2
    split = cbor2.dumps({"v": 1, "ep": "e", "ok": [[0, half - 1]], "no": [[10**6, 10**6 + half]]})
    with pytest.raises(AckError, match="at most"):  # the bound covers both fields together
        decode_ack(split)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "expected a CBOR map"),
        ({"v": 2, "ep": "e"}, "unsupported acknowledgement version 2"),
        ({"v": 1}, "field 'ep'"),
        ({"v": 1, "ep": "bad epoch"}, "field 'ep'"),
        ({"v": 1, "ep": 5}, "field 'ep'"),
        ({"v": 1, "ep": "e", "ok": {}}, "field 'ok' must be a list"),
        ({"v": 1, "ep": "e", "ok": [[1, 2, 3]]}, "pair of integers"),
        ({"v": 1, "ep": "e", "no": [[True, 2]]}, "pair of integers"),
        ({"v": 1, "ep": "e", "ok": [[5, 4]]}, "0 <= first <= last"),
        ({"v": 1, "ep": "e", "ok": [[-1, 4]]}, "0 <= first <= last"),
        ({"v": 1, "ep": "e", "ok": [[0, 2**63]]}, "0 <= first <= last"),
        ({"v": 1, "ep": "e", "ok": [[0, 0]] * 4097}, "at most 4096 ranges"),
    ],
)
def test_each_error_is_named(raw: Any, message: str) -> None:
    with pytest.raises(AckError, match=message):
        decode_ack(cbor2.dumps(raw))


@pytest.mark.parametrize("payload", [b"", b"\x00" * (1 << 16 + 1), "text", None, 7])
def test_empty_oversized_and_non_bytes_are_refused(payload: Any) -> None:
    with pytest.raises(AckError, match=r"1\.\.65536 bytes"):
        decode_ack(payload)


def test_an_empty_epoch_and_no_ranges_is_a_valid_acknowledgement_of_nothing() -> None:
    assert decode_ack(cbor2.dumps({"v": 1, "ep": ""})) == StoredAck("")
