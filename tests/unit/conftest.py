"""Fixtures shared by the unit tests: the relational store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cloud.store import Store, open_store
from vitalbridge.stack import PostgreSQL

_schemas = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a schema of its own on the session's PostgreSQL.

    Every test that takes it (or :func:`store`) runs once per backend. A schema per test is as
    independent as a database per test and costs a millisecond instead of a copy of the template.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cloud.db'}"
        return
    server: PostgreSQL = request.getfixturevalue("postgres")
    schema = f"test_{next(_schemas)}"
    with psycopg.connect(server.conninfo(server.database), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{server.url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server.conninfo(server.database), autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A fresh store on each backend (migrations applied), closed after the test."""
    opened = open_store(database_url)
    try:
        yield opened
    finally:
        opened.close()
