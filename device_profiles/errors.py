"""The one error type that every decoder raises."""

from __future__ import annotations

__all__ = ["DecodeError"]


class DecodeError(ValueError):
    """Bytes a decoder cannot turn into readings; the message says what is wrong and where."""
