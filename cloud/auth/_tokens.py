"""Access tokens (JWT, PyJWT): issued for a user, verified against the clock handed in.

Pure apart from PyJWT: no clock reads inside (``now`` is passed), so expiry is testable exactly.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import jwt

__all__ = ["ALGORITHM", "AccessClaims", "TokenError", "TokenSigner"]

ALGORITHM = "HS256"
_ISSUER = "vitalbridge"
_AUDIENCE = "vitalbridge-api"
_MIN_SECRET_BYTES = 32


class TokenError(ValueError):
    """A token that is malformed, forged, expired, of another algorithm or audience."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says: who (user id and name), in which role, and the token version."""

    user_id: int
    username: str
    role: str
    version: int
    expires: dt.datetime


class TokenSigner:
    """Signs and verifies access tokens with HMAC-SHA256 and one secret (at least 32 bytes)."""

    def __init__(self, secret: bytes, *, ttl: dt.timedelta = dt.timedelta(minutes=15)) -> None:
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.ttl = ttl

    def __repr__(self) -> str:  # never show the secret
        return f"TokenSigner(ttl={self.ttl})"

    def issue(self, *, user_id: int, username: str, role: str, version: int, now: dt.datetime) -> str:
        """A signed access token valid from ``now`` for :attr:`ttl`."""
        claims = {
            "iss": _ISSUER, "aud": _AUDIENCE, "sub": str(user_id), "name": username, "role": role, "ver": version,
            "iat": int(now.timestamp()), "exp": int((now + self.ttl).timestamp()), "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, *, now: dt.datetime) -> AccessClaims:
        """The claims of ``token``; raises :class:`TokenError` for anything but a valid, unexpired token."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=_AUDIENCE, issuer=_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token: {type(exc).__name__}") from None
        try:
            expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
            result = AccessClaims(int(claims["sub"]), str(claims["name"]), str(claims["role"]), int(claims["ver"]),
                                  expires)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            raise TokenError("invalid token: malformed claims") from None
        if now >= expires:
            raise TokenError("token expired")
        return result
