"""Fixtures of the integration tests that stop, restart or kill servers: a stack of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vitalbridge.stack import LocalStack


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """Mosquitto and influxd of this test alone, to stop, restart or kill."""
    stack = LocalStack(tmp_path / "stack").start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def pg_stack(postgres_installed: None, tmp_path: Path) -> Iterator[LocalStack]:
    """Mosquitto, influxd and PostgreSQL of this test alone."""
    stack = LocalStack(tmp_path / "pgstack", postgres=True).start()
    try:
        yield stack
    finally:
        stack.stop()
