"""InfluxDB (``influxd``) on free loopback ports with a generated config and data directory."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from vitalbridge.stack._process import ServiceProcess, StackError, find_binary, free_port

__all__ = ["InfluxAccounts", "InfluxDB", "influx_ping"]


def influx_ping(url: str, timeout_s: float = 1.0) -> bool:
    """Return True when ``GET {url}/ping`` answers 204, as every InfluxDB version does when ready."""
    try:
        return httpx.get(f"{url}/ping", timeout=timeout_s).status_code == 204
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class InfluxAccounts:
    """The secure profile's InfluxDB users as ``(username, password)``: an admin, a writer for the
    ingest (may only write), a reader for the API (may only read)."""

    admin: tuple[str, str]
    writer: tuple[str, str]
    reader: tuple[str, str]

    @classmethod
    def generate(cls) -> InfluxAccounts:
        """Three accounts with fresh random passwords."""
        return cls(*((name, secrets.token_urlsafe(18)) for name in ("vb_admin", "vb_ingest", "vb_api")))


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxDB:
    """An ``influxd`` with its HTTP API on ``127.0.0.1:port`` and its data under ``run_dir``.

    With ``auth=True`` (the secure profile) every request needs a user: an admin, a write-only user
    for the ingest and a read-only user for the API are made at the first start and kept in
    ``run_dir/accounts.json`` (0600); :meth:`add_database` creates a database and grants them on it.
    """

    def __init__(self, run_dir: Path, port: int | None = None, *, auth: bool = False) -> None:
        self.run_dir = run_dir
        self.auth = auth
        self.accounts: InfluxAccounts | None = None
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.rpc_port = free_port()
        self._process: ServiceProcess | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def config_text(self) -> str:
        """The generated influxdb.conf (TOML)."""
        data = self.run_dir / "influxdb"
        return "\n".join(
            [
                "reporting-disabled = true",
                f'bind-address = "{self.host}:{self.rpc_port}"',
                "[meta]",
                f'  dir = "{data / "meta"}"',
                "[data]",
                f'  dir = "{data / "data"}"',
                f'  wal-dir = "{data / "wal"}"',
                "  query-log-enabled = false",
                '  wal-fsync-delay = "0s"',
                "[monitor]",
                "  store-enabled = false",
                "[http]",
                "  enabled = true",
                f'  bind-address = "{self.host}:{self.port}"',
                f"  auth-enabled = {'true' if self.auth else 'false'}",
                "  log-enabled = false",
                "  max-body-size = 0",
                "[continuous_queries]",
                "  enabled = false",
                "",
            ]
        )

    def start(self) -> None:
        """Write the config, start influxd and wait until ``/ping`` answers 204."""
        binary = find_binary("influxd", "influxdb")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "influxdb.conf"
        config.write_text(self.config_text())
        self._process = ServiceProcess(
            "influxd",
            [binary, "-config", str(config)],
            self.run_dir / "influxd.log",
            lambda: influx_ping(self.url),
        )
        self._process.start(timeout_s=60.0)
        if self.auth:
            self.accounts = self._provision()

    def _query(self, statement: str, auth: tuple[str, str] | None) -> None:
        try:
            response = httpx.post(f"{self.url}/query", data={"q": statement}, auth=auth, timeout=10.0)
        except httpx.HTTPError as exc:
            raise StackError(f"influxd at {self.url} did not answer: {exc}") from None
        error = response.json().get("results", [{}])[0].get("error") if response.status_code == 200 else None
        if response.status_code != 200 or error:
            raise StackError(f"influxd refused {statement.split(' WITH ')[0]!r}: {error or response.text.strip()}")

    def _provision(self) -> InfluxAccounts:
        path = self.run_dir / "accounts.json"
        if path.exists():  # a restart on the same data: the users exist already
            data = json.loads(path.read_text())
            return InfluxAccounts(*(tuple(data[role]) for role in ("admin", "writer", "reader")))
        accounts = InfluxAccounts.generate()
        # With auth on and no user yet, influxd accepts exactly one request unauthenticated: the first admin.
        self._query(f"CREATE USER {_quote(accounts.admin[0])} WITH PASSWORD {_string(accounts.admin[1])} "
                    "WITH ALL PRIVILEGES", None)
        for name, password in (accounts.writer, accounts.reader):
            self._query(f"CREATE USER {_quote(name)} WITH PASSWORD {_string(password)}", accounts.admin)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({"admin": accounts.admin, "writer": accounts.writer, "reader": accounts.reader}, file)
        return accounts

    def add_database(self, db: str) -> None:
        """Create database ``db`` and let the writer write and the reader read it (secure profile only;
        without auth the cloud creates its database itself)."""
        if self.accounts is None:
            return
        admin = self.accounts.admin
        self._query(f"CREATE DATABASE {_quote(db)}", admin)
        self._query(f"GRANT WRITE ON {_quote(db)} TO {_quote(self.accounts.writer[0])}", admin)
        self._query(f"GRANT READ ON {_quote(db)} TO {_quote(self.accounts.reader[0])}", admin)

    def stop(self) -> None:
        """Stop influxd."""
        if self._process is not None:
            self._process.stop()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (for measuring its CPU and memory)."""
        return self._process.pid if self._process is not None else None
