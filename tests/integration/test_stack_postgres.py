"""PostgreSQL through the stack runner: a cluster of its own on a free port, never as root, cleaned up on stop."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import psycopg
import pytest

from cloud.store import open_store
from vitalbridge.stack import LocalStack, find_postgres_bindir

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


def _owner(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # the effective uid
    raise AssertionError("no Uid line")


def test_the_server_binaries_are_found_off_path(postgres_installed: None) -> None:
    bindir = find_postgres_bindir()
    assert (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def test_a_stack_with_postgres_serves_a_store_and_cleans_up(postgres_installed: None, tmp_path: Path) -> None:
    run_dir = tmp_path / "stack"
    with LocalStack(run_dir, mqtt=False, influx=False, postgres=True, postgres_timezone="Asia/Kolkata") as stack:
        server = stack.postgres
        assert server is not None and server.running
        assert stack.database_url.startswith(f"postgresql+psycopg://vitalbridge@127.0.0.1:{server.port}/")
        store = open_store(stack.database_url)
        try:
            store.ping()
        finally:
            store.close()
        with psycopg.connect(server.conninfo()) as connection:
            pid = connection.execute("SELECT pg_backend_pid()").fetchone()
            zone = connection.execute("SHOW timezone").fetchone()
            now = connection.execute("SELECT now()").fetchone()
        assert zone == ("Asia/Kolkata",)
        assert now is not None and now[0].utcoffset() == dt.timedelta(hours=5, minutes=30)
        assert pid is not None and _owner(pid[0]) != 0  # PostgreSQL refuses root; the stack never asks it to
        data_dir = server.data_dir
        assert (data_dir / "PG_VERSION").is_file()
        if os.geteuid() != 0:
            assert data_dir == run_dir / "postgresql" / "data"
        url = server.create_database("second")
        assert url.endswith("/second")
        server.drop_database("second")
    assert not server.running
    assert not data_dir.exists() or os.geteuid() != 0  # root's private cluster directory is removed
    assert (run_dir / "postgresql" / "postgres.log").is_file()
