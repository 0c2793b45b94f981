"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store import Store, open_store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cloud.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """A fresh SQLite store, closed after the test."""
    opened = open_store(f"sqlite:///{db_path}")
    try:
        yield opened
    finally:
        opened.close()
