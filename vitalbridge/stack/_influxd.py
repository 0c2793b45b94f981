"""InfluxDB (``influxd``) on free loopback ports with a generated config and data directory."""

from __future__ import annotations

from pathlib import Path

import httpx

from vitalbridge.stack._process import ServiceProcess, find_binary, free_port

__all__ = ["InfluxDB", "influx_ping"]


def influx_ping(url: str, timeout_s: float = 1.0) -> bool:
    """Return True when ``GET {url}/ping`` answers 204, as every InfluxDB version does when ready."""
    try:
        return httpx.get(f"{url}/ping", timeout=timeout_s).status_code == 204
    except httpx.HTTPError:
        return False


class InfluxDB:
    """An ``influxd`` with its HTTP API on ``127.0.0.1:port`` and its data under ``run_dir``."""

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.run_dir = run_dir
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
                "  auth-enabled = false",
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

    def stop(self) -> None:
        """Stop influxd."""
        if self._process is not None:
            self._process.stop()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (for measuring its CPU and memory)."""
        return self._process.pid if self._process is not None else None
