"""Reconnect delays: exponential growth with jitter, reset once a connection has proved stable."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from device_profiles.userfile import UserFileError, plain_problems

__all__ = ["OPTIONS_CONFIG", "Backoff", "PositiveInt", "Seconds", "failure_log_level", "options_from"]


def failure_log_level(failures: int) -> int:
    """Log the first failure of a streak and every 20th: a device out of reach is not news every second."""
    return logging.WARNING if failures == 1 or failures % 20 == 0 else logging.DEBUG


Seconds = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False, strict=True)]
"""An option in seconds: above zero, at most a million (11 days); an int is accepted, a bool or text is not."""

PositiveInt = Annotated[int, Field(gt=0, le=10**9, strict=True)]
"""An option that is a whole number above zero (at most a billion)."""

OPTIONS_CONFIG = ConfigDict(extra="forbid")
"""pydantic config of a transport's options dataclass: an unknown key is a mistake (a typo)."""

OptionsT = TypeVar("OptionsT")


def options_from(options_class: type[OptionsT], options: Mapping[str, Any]) -> OptionsT:
    """Validate a device's ``options`` into ``options_class`` (a dataclass with pydantic field types).

    ``ValueError`` names the first bad option and says what is expected.
    """
    try:
        return TypeAdapter(options_class).validate_python(dict(options))
    except ValidationError as exc:
        raise ValueError(str(UserFileError(plain_problems(exc, options_class, file="options")))
                         .removeprefix("options: ")) from None


@dataclass
class Backoff:
    """Delays (s) between reconnect attempts: ``initial_s * factor**n`` capped at ``max_s``, jittered.

    Jitter takes up to ``jitter`` (a fraction) off each delay so that gateways that lost their
    devices together (a power cut, a broker restart) do not retry in lockstep. ``rng`` is
    injected; seed it in tests for a reproducible sequence.
    """

    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff needs factor >= 1 and 0 <= jitter < 1")

    @classmethod
    def for_reconnects(cls, initial_s: float, max_s: float, rng: random.Random | None = None) -> Backoff:
        """A transport's reconnect backoff from its options (a cap below the start is raised to it)."""
        return cls(initial_s, max(max_s, initial_s), rng=rng or random.Random())

    def ceiling_s(self) -> float:
        """The un-jittered delay (s) the next call to :meth:`next_delay` starts from."""
        ceiling = self.initial_s
        if self.factor == 1:
            return ceiling
        # Multiply step by step and stop at the cap, so a long outage cannot overflow the float.
        for _ in range(self.attempts):
            ceiling *= self.factor
            if ceiling >= self.max_s:
                return self.max_s
        return ceiling

    def next_delay(self) -> float:
        """The delay (s) before the next attempt; each call makes the following one longer."""
        ceiling = self.ceiling_s()
        self.attempts += 1
        return ceiling * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Start again from ``initial_s`` (after a connection that stayed up)."""
        self.attempts = 0
