"""Shared fixtures: the real local stack (Mosquitto + influxd, and PostgreSQL) started once per test session."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from edge.spool import BatchSpool
from vitalbridge.stack import LocalStack, PostgreSQL, StackError, find_postgres_bindir, free_port

_counter = itertools.count()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Real Mosquitto and influxd on free loopback ports, stopped when the session ends."""
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


# Far from UTC, so that code which reads the server's datetimes as if they were UTC fails here.
POSTGRES_TIMEZONE = "America/St_Johns"


@pytest.fixture(scope="session")
def postgres_installed() -> None:
    """Skip where the PostgreSQL server is not installed, with the reason; under CI (``CI`` set) fail instead.

    CI installs it (``make setup``), so there a missing server must not pass as skipped tests.
    """
    try:
        find_postgres_bindir()
    except StackError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL tests cannot run under CI: {exc}")
        pytest.skip(f"PostgreSQL is not installed here: {exc}")


@pytest.fixture(scope="session")
def postgres(postgres_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgreSQL]:
    """A real PostgreSQL server on a free loopback port, started once per session by the stack runner."""
    with LocalStack(tmp_path_factory.mktemp("postgres"), mqtt=False, influx=False, postgres=True,
                    postgres_timezone=POSTGRES_TIMEZONE) as running:
        assert running.postgres is not None
        yield running.postgres


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[BatchSpool]:
    """A fresh gateway spool on a temporary file, closed after the test."""
    opened = BatchSpool(tmp_path / "spool.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names (gateway ids, InfluxDB databases, client ids) no other test uses."""
    return lambda prefix: f"{prefix}{next(_counter)}"


@pytest.fixture
async def cloud(stack: LocalStack, tmp_path: Path, unique_name: Callable[[str], str]) -> AsyncIterator[object]:
    """A running cloud service (ingest + API) on its own database and InfluxDB database, taking batches from
    unregistered gateways (``registry="off"``)."""
    from cloud.service import CloudConfig, CloudService

    config = CloudConfig(
        mqtt_url=stack.mqtt_url,
        influx_url=stack.influx_url,
        influx_db=unique_name("vbtest"),
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}",
        http_port=free_port(),
        client_id=unique_name("ingest-"),
        registry="off",  # these tests are about the ingest's mechanics; tests/integration/test_registry.py enforces
        shared_group=unique_name("group-"),  # a group of its own: earlier tests' sessions are not its workers
    )
    service = CloudService(config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture(autouse=True)
def _no_stray_event_loop(request: pytest.FixtureRequest) -> None:
    """A sync test has no event loop: looptime's hook would otherwise make one for it and never close it."""
    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        asyncio.set_event_loop(None)
