"""Enrolment codes, as people read them off a screen and type them into a gateway.

A code is :data:`CODE_LENGTH` characters from :data:`CODE_ALPHABET`, shown in groups of four
(``ABCD-EFGH-JK``). The alphabet leaves out the characters people confuse when they copy by hand
(``0``/``O``, ``1``/``I``/``L``, and ``U``, read as ``V``), so every code reads one way only.
:func:`normalise_code` accepts what people actually type (lower case, spaces or dashes anywhere) and
refuses, with a message saying which character, anything else. Both the gateway (to refuse a mistyped
code before it asks the cloud) and the cloud (to find the code) use it.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "CODE_ALPHABET",
    "CODE_GROUP",
    "CODE_LENGTH",
    "CodeFormatError",
    "format_code",
    "new_code",
    "normalise_code",
]

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
"""30 symbols: A-Z without I, L, O and U; 2-9. 30**10 codes is about 49 bits."""

CODE_LENGTH = 10
CODE_GROUP = 4
_SEPARATORS = frozenset(" -\t")
_LOOK_ALIKES = {"0": "O or 0", "O": "O or 0", "1": "1, I or L", "I": "1, I or L", "L": "1, I or L", "U": "U"}


class CodeFormatError(ValueError):
    """Text that cannot be an enrolment code; the message says why, in one line."""


def new_code(random_below: Callable[[int], int]) -> str:
    """A fresh code in its normal form (no dashes), each symbol drawn with ``random_below(n)``, which must
    return a uniformly random integer in ``0..n-1`` from a cryptographic source (``secrets.randbelow``)."""
    return "".join(CODE_ALPHABET[random_below(len(CODE_ALPHABET))] for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """``code`` (normal form) as people see it: groups of four joined by dashes, ``ABCD-EFGH-JK``."""
    return "-".join(code[i:i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


def normalise_code(text: str) -> str:
    """The normal form (upper case, no separators) of a code as typed; :class:`CodeFormatError` if it
    cannot be one (a look-alike character, another character, or the wrong length)."""
    symbols = [c.upper() for c in text if c not in _SEPARATORS]
    for symbol in symbols:
        if symbol in _LOOK_ALIKES:
            raise CodeFormatError(f"enrolment codes never contain {_LOOK_ALIKES[symbol]}; check the code "
                                  "(it uses only the letters and digits shown by your care team)")
        if symbol not in CODE_ALPHABET:
            raise CodeFormatError(f"an enrolment code has only letters and digits, not {symbol!r}")
    if len(symbols) != CODE_LENGTH:
        raise CodeFormatError(f"an enrolment code has {CODE_LENGTH} letters and digits (like ABCD-EFGH-JK), "
                              f"this one has {len(symbols)}")
    return "".join(symbols)
