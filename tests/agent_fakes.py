"""Stand-ins for building a gateway agent in tests without devices: a profile with no decoders, no transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from device_profiles.registry import DecodeContext, DecodeResult, DecoderRegistry

__all__ = ["NoDecoderProfile", "never_started"]


class NoDecoderProfile:
    """A profile called ``test.oximeter`` whose decoders are never asked for."""

    id = "test.oximeter"

    def decoder_for(self, key: str, registry: DecoderRegistry) -> Callable[[bytes, DecodeContext], DecodeResult]:
        raise KeyError(key)


def never_started(*_: Any) -> Any:
    """A transport factory for agents whose devices are fed directly: starting one is a test bug."""
    raise AssertionError("no transport runs in these tests")
