"""`vitalbridge cloud run|ingest|api` as processes: every unusable setting or unreachable server is one plain line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vitalbridge.stack import free_port

pytestmark = pytest.mark.integration


def _cloud(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "vitalbridge.cli", "cloud", *args, "--database-url", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True, text=True, timeout=60, check=False, env=os.environ | (env or {}),
    )


def _one_line(completed: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in completed.stderr, completed.stderr
    logged = (" INFO ", " WARNING ")
    lines = [line for line in completed.stderr.splitlines() if line and not any(word in line for word in logged)]
    assert len(lines) == 1, completed.stderr
    return lines[0]


def test_unreachable_influxdb_is_one_line(tmp_path: Path) -> None:
    completed = _cloud(tmp_path, "run", "--influx-url", f"http://127.0.0.1:{free_port()}", "--port", "0")
    assert completed.returncode == 1
    assert _one_line(completed).startswith("vitalbridge cloud run: cannot reach InfluxDB at http://127.0.0.1:")


def test_unreachable_broker_is_one_line(stack: Any, tmp_path: Path) -> None:
    completed = _cloud(tmp_path, "ingest", "--influx-url", stack.influx_url, "--influx-db", "cli_test",
                       "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}", "--port", "0")
    assert completed.returncode == 1
    line = _one_line(completed)
    assert line.startswith("vitalbridge cloud ingest: cannot reach the MQTT broker at mqtt://127.0.0.1:"), line


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--port", "70000"], {}, "--port"),
    (["--mqtt-url", "http://broker"], {}, "--mqtt-url"),
    ([], {"VB_INGEST_MAX_MESSAGES": "lots"}, "VB_INGEST_MAX_MESSAGES"),
    ([], {"VB_INGEST_STALL_S": "-1"}, "VB_INGEST_STALL_S"),
])
def test_an_unusable_setting_names_the_flag_or_variable(tmp_path: Path, args: list[str], env: dict[str, str],
                                                        named: str) -> None:
    completed = _cloud(tmp_path, "run", *args, env=env)
    assert completed.returncode == 2
    assert _one_line(completed).startswith(f"vitalbridge cloud run: {named}: ")


def test_an_unopenable_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "c.db").mkdir()  # a directory where the database file should be
    completed = _cloud(tmp_path, "api", "--port", "0")
    assert completed.returncode == 1
    assert "cannot open the database sqlite:///" in _one_line(completed)
