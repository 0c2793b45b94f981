"""Reconnect delays: exponential growth, cap, jitter bounds and reset."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.transports._backoff import Backoff


def test_without_jitter_delays_double_up_to_the_cap_and_reset_starts_over() -> None:
    backoff = Backoff(initial_s=0.5, max_s=5.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    backoff.reset()
    assert [backoff.next_delay() for _ in range(2)] == [0.5, 1.0]


def test_jitter_is_reproducible_with_a_seeded_generator() -> None:
    first = Backoff(rng=random.Random(42))
    second = Backoff(rng=random.Random(42))
    assert [first.next_delay() for _ in range(5)] == [second.next_delay() for _ in range(5)]


@pytest.mark.parametrize("kwargs", [{"initial_s": 0}, {"initial_s": 2, "max_s": 1}, {"factor": 0.5},
                                    {"jitter": 1.0}, {"jitter": -0.1}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(initial=st.floats(0.01, 10), cap_factor=st.floats(1, 100), factor=st.floats(1, 1e6), jitter=st.floats(0, 0.99),
       attempts=st.integers(0, 2000), seed=st.integers(0, 2**32))
def test_every_delay_lies_between_the_jittered_floor_and_the_capped_ceiling(
        initial: float, cap_factor: float, factor: float, jitter: float, attempts: int, seed: int) -> None:
    backoff = Backoff(initial, initial * cap_factor, factor, jitter, random.Random(seed), attempts=attempts)
    ceiling = initial * cap_factor if factor > 1 and attempts * math.log(factor) >= math.log(cap_factor) else \
        initial * factor**attempts
    delay = backoff.next_delay()
    assert (1 - jitter) * ceiling * (1 - 1e-12) <= delay <= ceiling * (1 + 1e-12)
    assert backoff.attempts == attempts + 1
