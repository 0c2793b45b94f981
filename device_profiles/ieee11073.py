"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) numbers, decoded and encoded.

Both hold ``mantissa * 10**exponent`` with a signed exponent in the high bits (4 bits for SFLOAT,
8 for FLOAT) and a signed mantissa in the rest (12 and 24 bits). Five raw values with exponent 0
are not numbers but special values (NaN, NRes, +INF, -INF, reserved); they decode to
``Measured(value=None, special=...)``, never to a number, so a caller cannot use one by mistake.

Decoded values are the nearest float to the exact decimal (``366 * 10**-1`` gives ``36.6``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "FLOAT_EXPONENT_RANGE",
    "Measured",
    "SFLOAT_EXPONENT_RANGE",
    "SpecialValue",
    "decode_float",
    "decode_sfloat",
    "encode_float",
    "encode_sfloat",
]


class SpecialValue(enum.Enum):
    """The IEEE 11073-20601 special values; each means "no number here" for its own reason."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "reserved"

    @property
    def reason(self) -> str:
        """Why the device sent no number, in words for notes and logs."""
        return _REASONS[self]


_REASONS = {
    SpecialValue.NAN: "not a number (the device had no valid value)",
    SpecialValue.NRES: "not at this resolution (the value did not fit the format)",
    SpecialValue.POSITIVE_INFINITY: "positive infinity (above the device's measuring range)",
    SpecialValue.NEGATIVE_INFINITY: "negative infinity (below the device's measuring range)",
    SpecialValue.RESERVED: "a reserved special value",
}


@dataclass(frozen=True, slots=True)
class Measured:
    """A decoded SFLOAT/FLOAT: either a finite ``value`` or a ``special`` value, never both.

    ``exponent`` is the wire exponent the value came with (its decimal precision). It does not
    take part in equality (36.6 is 36.6 at any precision); encoders reuse it to reproduce the
    device's exact bytes.
    """

    value: float | None
    special: SpecialValue | None = None
    exponent: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.value is None) == (self.special is None):
            raise ValueError("Measured needs exactly one of value and special")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError("Measured.value must be finite; use a SpecialValue instead")

    @classmethod
    def of(cls, value: float, exponent: int | None = None) -> Measured:
        """A measured number ``value`` (optionally with its wire exponent)."""
        return cls(float(value), None, exponent)

    @classmethod
    def missing(cls, special: SpecialValue) -> Measured:
        """A special value in place of a number."""
        return cls(None, special, 0)

    @property
    def usable(self) -> bool:
        """True when there is a number."""
        return self.value is not None


SFLOAT_EXPONENT_RANGE = (-8, 7)
"""Smallest and largest SFLOAT exponent (4-bit two's complement)."""
FLOAT_EXPONENT_RANGE = (-128, 127)
"""Smallest and largest FLOAT exponent (8-bit two's complement)."""


@dataclass(frozen=True, slots=True)
class _Format:
    mantissa_bits: int
    exponent_bits: int
    specials: dict[int, SpecialValue]  # mantissa (two's complement bits) at exponent 0

    @property
    def mantissa_mask(self) -> int:
        return (1 << self.mantissa_bits) - 1

    @property
    def exponent_range(self) -> tuple[int, int]:
        half = 1 << (self.exponent_bits - 1)
        return -half, half - 1

    def mantissa_fits(self, mantissa: int, exponent: int) -> bool:
        half = 1 << (self.mantissa_bits - 1)
        if exponent == 0:
            # at exponent 0 the two largest and three smallest mantissas are the special values
            return -half + 3 <= mantissa <= half - 3
        return -half <= mantissa <= half - 1


_SFLOAT = _Format(
    12,
    4,
    {
        0x7FF: SpecialValue.NAN,
        0x800: SpecialValue.NRES,
        0x7FE: SpecialValue.POSITIVE_INFINITY,
        0x802: SpecialValue.NEGATIVE_INFINITY,
        0x801: SpecialValue.RESERVED,
    },
)
_FLOAT = _Format(
    24,
    8,
    {
        0x7FFFFF: SpecialValue.NAN,
        0x800000: SpecialValue.NRES,
        0x7FFFFE: SpecialValue.POSITIVE_INFINITY,
        0x800002: SpecialValue.NEGATIVE_INFINITY,
        0x800001: SpecialValue.RESERVED,
    },
)
_SPECIAL_CODES = {
    fmt.mantissa_bits: {special: code for code, special in fmt.specials.items()} for fmt in (_SFLOAT, _FLOAT)
}


def _signed(bits: int, width: int) -> int:
    return bits - (1 << width) if bits & (1 << (width - 1)) else bits


def _decode(raw: int, fmt: _Format) -> Measured:
    total = fmt.mantissa_bits + fmt.exponent_bits
    if not 0 <= raw < (1 << total):
        raise ValueError(f"raw value {raw} is not a {total}-bit unsigned integer")
    mantissa_bits = raw & fmt.mantissa_mask
    exponent = _signed(raw >> fmt.mantissa_bits, fmt.exponent_bits)
    if exponent == 0 and mantissa_bits in fmt.specials:
        return Measured.missing(fmt.specials[mantissa_bits])
    mantissa = _signed(mantissa_bits, fmt.mantissa_bits)
    # Parsing the decimal string gives the float nearest the exact decimal value.
    return Measured(float(f"{mantissa}e{exponent}"), None, exponent)


def decode_sfloat(raw: int) -> Measured:
    """Decode a 16-bit SFLOAT (as an unsigned integer, already byte-order corrected)."""
    return _decode(raw, _SFLOAT)


def decode_float(raw: int) -> Measured:
    """Decode a 32-bit FLOAT (as an unsigned integer, already byte-order corrected)."""
    return _decode(raw, _FLOAT)


def _round_to(value: Decimal, exponent: int) -> int:
    """``value / 10**exponent`` rounded half-to-even, in exact integer arithmetic."""
    sign, digit_tuple, own_exponent = value.as_tuple()
    assert isinstance(own_exponent, int)
    digits = int("".join(map(str, digit_tuple)) or "0")
    shift = own_exponent - exponent
    magnitude: int
    if shift >= 0:
        magnitude = digits * 10**shift
    else:
        divisor: int = 10**-shift
        magnitude, remainder = divmod(digits, divisor)
        if 2 * remainder > divisor or (2 * remainder == divisor and magnitude % 2):
            magnitude += 1
    return -magnitude if sign else magnitude


def _pack(mantissa: int, exponent: int, fmt: _Format) -> int:
    exponent_mask = (1 << fmt.exponent_bits) - 1
    return ((exponent & exponent_mask) << fmt.mantissa_bits) | (mantissa & fmt.mantissa_mask)


def _encode(value: float | SpecialValue, exponent: int | None, fmt: _Format) -> int:
    if isinstance(value, SpecialValue):
        return _SPECIAL_CODES[fmt.mantissa_bits][value]
    if math.isnan(value):
        return _SPECIAL_CODES[fmt.mantissa_bits][SpecialValue.NAN]
    if math.isinf(value):
        special = SpecialValue.POSITIVE_INFINITY if value > 0 else SpecialValue.NEGATIVE_INFINITY
        return _SPECIAL_CODES[fmt.mantissa_bits][special]
    low, high = fmt.exponent_range
    # repr() is the shortest decimal that reads back as the same float: 36.6, not 36.600000000000001
    exact = Decimal(repr(float(value)))
    if exponent is not None:
        if not low <= exponent <= high:
            raise ValueError(f"exponent {exponent} outside {low}..{high}")
        mantissa = _round_to(exact, exponent)
        if not fmt.mantissa_fits(mantissa, exponent):
            raise ValueError(f"{value} does not fit a mantissa at exponent {exponent}")
        return _pack(mantissa, exponent, fmt)
    if exact == 0:
        return 0
    natural = exact.normalize().as_tuple().exponent
    assert isinstance(natural, int)  # finite values only reach here
    # Integers go at exponent 0 when they fit; otherwise the finest exponent that fits wins.
    for candidate in range(max(min(natural, 0), low), high + 1):
        mantissa = _round_to(exact, candidate)
        if fmt.mantissa_fits(mantissa, candidate):
            return _pack(mantissa, candidate, fmt)
    raise ValueError(f"{value} is too large for the format")


def encode_sfloat(value: float | SpecialValue, *, exponent: int | None = None) -> int:
    """Encode ``value`` as a 16-bit SFLOAT (unsigned integer; write it little-endian).

    NaN and infinities map to their special values. Without ``exponent`` the value is stored
    exactly when it can be (integers at exponent 0, decimals at their own precision), otherwise
    rounded half-to-even at the finest exponent whose mantissa fits. ``ValueError`` when the
    value cannot fit at all or at the given exponent.
    """
    return _encode(value, exponent, _SFLOAT)


def encode_float(value: float | SpecialValue, *, exponent: int | None = None) -> int:
    """Encode ``value`` as a 32-bit FLOAT (unsigned integer; write it little-endian); rules as SFLOAT."""
    return _encode(value, exponent, _FLOAT)
