"""How a code is kept: a slow, deterministic hash of its normal form, so that it can be looked up by hash
and a copy of the database does not give the codes back faster than guessing them online would."""

from __future__ import annotations

import hashlib

__all__ = ["code_digest"]

# scrypt (RFC 7914) with memory-hard parameters: about 16 MiB and tens of milliseconds per code. Deterministic
# (one salt for every code), because a gateway presents only the code and the row must be found by it; a code's
# 49 bits and its short life are what a per-row salt would otherwise protect.
_SALT = b"vitalbridge/enrolment-code/v1"
_N, _R, _P = 2**14, 8, 1


def code_digest(code: str) -> str:
    """The stored form (64 hex digits) of ``code`` in its normal form (:func:`vitals.enrolment.normalise_code`)."""
    return hashlib.scrypt(code.encode("ascii"), salt=_SALT, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024,
                          dklen=32).hex()
