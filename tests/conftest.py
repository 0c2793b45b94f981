"""Shared fixtures: the real local stack (Mosquitto + influxd) started once per test session."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from edge.spool import BatchSpool
from vitalbridge.stack import LocalStack, free_port

_counter = itertools.count()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Real Mosquitto and influxd on free loopback ports, stopped when the session ends."""
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


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
    )
    service = CloudService(config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
