"""IEEE 11073-20601 SFLOAT/FLOAT: byte-exact decoding, special values, encoding and round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.ieee11073 import (
    Measured,
    SpecialValue,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)

SFLOAT_SPECIALS = {
    0x07FF: SpecialValue.NAN,
    0x0800: SpecialValue.NRES,
    0x07FE: SpecialValue.POSITIVE_INFINITY,
    0x0802: SpecialValue.NEGATIVE_INFINITY,
    0x0801: SpecialValue.RESERVED,
}
FLOAT_SPECIALS = {
    0x007FFFFF: SpecialValue.NAN,
    0x00800000: SpecialValue.NRES,
    0x007FFFFE: SpecialValue.POSITIVE_INFINITY,
    0x00800002: SpecialValue.NEGATIVE_INFINITY,
    0x00800001: SpecialValue.RESERVED,
}


@pytest.mark.parametrize(
    ("raw", "value", "exponent"),
    [
        (0x0002, 2.0, 0),
        (0xF014, 2.0, -1),  # 20e-1: same number, one decimal of precision
        (0xE0C8, 2.0, -2),
        (0x1002, 20.0, 1),
        (0x2002, 200.0, 2),
        (0x04D2, 1234.0, 0),
        (0x0B2E, -1234.0, 0),
        (0xF16E, 36.6, -1),
        (0xFFDD, -3.5, -1),
        (0x87FF, 2047e-8, -8),  # exponent -8 with mantissa 0x7FF is a number, not NaN
        (0x0000, 0.0, 0),
        (0x7800, -2048e7, 7),
    ],
)
def test_decode_sfloat_numbers(raw: int, value: float, exponent: int) -> None:
    decoded = decode_sfloat(raw)
    assert decoded == Measured(value, None)
    assert decoded.exponent == exponent
    assert decoded.usable


@pytest.mark.parametrize(("raw", "special"), SFLOAT_SPECIALS.items())
def test_decode_sfloat_specials_are_never_numbers(raw: int, special: SpecialValue) -> None:
    decoded = decode_sfloat(raw)
    assert decoded == Measured(None, special)
    assert not decoded.usable
    assert special.reason


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x00000002, 2.0),
        (0xFF000014, 2.0),
        (0xFE0000C8, 2.0),
        (0x01000002, 20.0),
        (0x00FFFB2E, -1234.0),
        (0xFF00016E, 36.6),
        (0xFD008D5B, 36.187),
        (0x80000001, 1e-128),
        (0x7F7FFFFF, 8388607e127),
    ],
)
def test_decode_float_numbers(raw: int, value: float) -> None:
    assert decode_float(raw) == Measured(value, None)


@pytest.mark.parametrize(("raw", "special"), FLOAT_SPECIALS.items())
def test_decode_float_specials(raw: int, special: SpecialValue) -> None:
    assert decode_float(raw) == Measured(None, special)


@pytest.mark.parametrize(("raw", "special"), SFLOAT_SPECIALS.items())
def test_encode_sfloat_specials(raw: int, special: SpecialValue) -> None:
    assert encode_sfloat(special) == raw


@pytest.mark.parametrize(("raw", "special"), FLOAT_SPECIALS.items())
def test_encode_float_specials(raw: int, special: SpecialValue) -> None:
    assert encode_float(special) == raw


def test_encode_ieee754_nan_and_infinities_map_to_specials() -> None:
    assert encode_sfloat(math.nan) == 0x07FF
    assert encode_sfloat(math.inf) == 0x07FE
    assert encode_sfloat(-math.inf) == 0x0802
    assert encode_float(math.nan) == 0x007FFFFF
    assert encode_float(-math.inf) == 0x00800002


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        (120, 0x0078),
        (36.6, 0xF16E),
        (0.0055, 0xC037),
        (2045, 0x07FD),
        (2046, 0x10CD),  # 2046 at exponent 0 would be +INF: rounded to 205e1
        (-2045, 0x0803),
        (123000, 0x24CE),
        (0.0, 0x0000),
    ],
)
def test_encode_sfloat_chooses_exact_short_form(value: float, raw: int) -> None:
    assert encode_sfloat(value) == raw


def test_encode_float_chooses_exact_short_form() -> None:
    assert encode_float(36.6) == 0xFF00016E
    assert encode_float(98.6) == 0xFF0003DA
    assert encode_float(-1234) == 0x00FFFB2E
    assert encode_float(8388605) == 0x007FFFFD


def test_encode_with_explicit_exponent() -> None:
    assert encode_sfloat(2.0, exponent=-2) == 0xE0C8
    assert encode_sfloat(36.66, exponent=-1) == 0xF16F  # rounded half-even to 36.7
    assert encode_float(36.6, exponent=-3) == 0xFD008EF8
    with pytest.raises(ValueError, match="exponent 8"):
        encode_sfloat(1.0, exponent=8)
    with pytest.raises(ValueError, match="does not fit"):
        encode_sfloat(300.0, exponent=-1)
    with pytest.raises(ValueError, match="does not fit"):
        encode_sfloat(2047.0, exponent=0)  # that mantissa is NaN at exponent 0


def test_encode_too_large() -> None:
    with pytest.raises(ValueError, match="too large"):
        encode_sfloat(1e12)


def test_raw_outside_width_is_value_error() -> None:
    with pytest.raises(ValueError):
        decode_sfloat(0x10000)
    with pytest.raises(ValueError):
        decode_float(-1)


def test_measured_invariants() -> None:
    with pytest.raises(ValueError):
        Measured(None, None)
    with pytest.raises(ValueError):
        Measured(1.0, SpecialValue.NAN)
    with pytest.raises(ValueError):
        Measured(math.inf)
    assert Measured.of(36.6, -1) == Measured.of(36.6, -2)  # precision is not part of equality


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xFFFF))
def test_sfloat_raw_round_trip(raw: int) -> None:
    decoded = decode_sfloat(raw)
    value = decoded.special if decoded.special is not None else decoded.value
    assert value is not None
    again = encode_sfloat(value, exponent=decoded.exponent if decoded.special is None else None)
    # every raw value survives, except that mantissa 0 has one value per exponent
    assert decode_sfloat(again) == decoded
    if decoded.value != 0.0:
        assert again == raw


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xFFFFFFFF))
def test_float_raw_round_trip(raw: int) -> None:
    decoded = decode_float(raw)
    value = decoded.special if decoded.special is not None else decoded.value
    assert value is not None
    again = encode_float(value, exponent=decoded.exponent if decoded.special is None else None)
    assert decode_float(again) == decoded
    if decoded.value != 0.0:
        assert again == raw


@settings(max_examples=300, deadline=None)
@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_auto_exponent_is_exact(mantissa: int, exponent: int) -> None:
    value = float(f"{mantissa}e{exponent}")
    assert decode_sfloat(encode_sfloat(value)).value == value


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_sfloat_encode_any_float_is_int_or_value_error(value: float) -> None:
    try:
        raw = encode_sfloat(value)
    except ValueError:
        assert abs(value) > 2045e7
        return
    assert 0 <= raw <= 0xFFFF
