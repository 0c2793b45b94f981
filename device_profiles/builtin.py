"""The one list of built-in decoders."""

from __future__ import annotations

from device_profiles.registry import DecoderRegistry

__all__ = ["register_builtins"]


def register_builtins(registry: DecoderRegistry) -> None:
    """Add every built-in decoder to ``registry``."""
