"""Enrolment codes as people type them: the generator, the grouping and the normalisation (vitals.enrolment),
and the slow hash the cloud keeps instead of the code."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.enrolment import code_digest
from vitals.enrolment import CODE_ALPHABET, CODE_LENGTH, CodeFormatError, format_code, new_code, normalise_code

codes = st.text(alphabet=CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH)
LOOK_ALIKES = "0O1ILU"


def test_a_code_is_grouped_in_fours() -> None:
    assert format_code("ABCDEFGHJK") == "ABCD-EFGH-JK"
    assert normalise_code("ABCD-EFGH-JK") == "ABCDEFGHJK"


def test_the_alphabet_has_no_look_alikes_and_no_repeats() -> None:
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET) == 30
    assert not set(LOOK_ALIKES) & set(CODE_ALPHABET)


@given(st.integers(min_value=0, max_value=2**32))
def test_new_codes_are_normal_codes_of_the_alphabet(seed: int) -> None:
    code = new_code(random.Random(seed).randrange)
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    assert normalise_code(format_code(code)) == code


def test_new_codes_use_every_symbol() -> None:
    rng = random.Random(7)
    drawn = "".join(new_code(rng.randrange) for _ in range(200))
    assert set(drawn) == set(CODE_ALPHABET)


@given(codes, st.lists(st.sampled_from([" ", "-", "\t", "  ", "--"]), min_size=CODE_LENGTH + 1,
                       max_size=CODE_LENGTH + 1), st.lists(st.booleans(), min_size=CODE_LENGTH, max_size=CODE_LENGTH))
def test_case_spaces_and_dashes_anywhere_are_accepted(code: str, gaps: list[str], lower: list[bool]) -> None:
    typed = gaps[0] + "".join((c.lower() if low else c) + gap for c, low, gap in zip(code, lower, gaps[1:],
                                                                                     strict=True))
    assert normalise_code(typed) == code


@given(codes, st.integers(min_value=0, max_value=CODE_LENGTH - 1), st.sampled_from(LOOK_ALIKES + LOOK_ALIKES.lower()))
def test_a_look_alike_anywhere_is_refused_by_name(code: str, where: int, look_alike: str) -> None:
    typed = code[:where] + look_alike + code[where + 1:]
    with pytest.raises(CodeFormatError, match="never contain"):
        normalise_code(format_code(typed))


@given(st.text(alphabet=CODE_ALPHABET, max_size=30).filter(lambda c: len(c) != CODE_LENGTH))
def test_a_code_of_the_wrong_length_is_refused(code: str) -> None:
    with pytest.raises(CodeFormatError, match=f"has {CODE_LENGTH} letters and digits"):
        normalise_code(code)


@given(st.text(max_size=40))
def test_any_text_is_a_normal_code_or_one_clear_error(text: str) -> None:
    try:
        code = normalise_code(text)
    except CodeFormatError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)


def test_the_stored_hash_is_deterministic_and_hides_the_code() -> None:
    digest = code_digest("ABCDEFGHJK")
    assert digest == code_digest("ABCDEFGHJK") != code_digest("ABCDEFGHJM")
    assert len(digest) == 64 and "ABCDEFGHJK" not in digest
