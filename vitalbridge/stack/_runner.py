"""Mosquitto + InfluxDB (+ PostgreSQL on request) together, as a context manager that always stops what it started."""

from __future__ import annotations

import shutil
import signal
import tempfile
import types
from pathlib import Path

from vitalbridge.stack._influxd import InfluxDB
from vitalbridge.stack._mosquitto import Mosquitto
from vitalbridge.stack._postgres import PostgreSQL

__all__ = ["LocalStack"]


class LocalStack:
    """Start the services VitalBridge needs on loopback; ``with LocalStack() as stack: ...``.

    ``run_dir`` holds the generated configs, logs and data; a temporary directory (removed on
    stop) is used when none is given. SIGTERM is turned into a clean stop while the stack runs.
    PostgreSQL is started only when asked for (``postgres=True``); the cloud's default store is a
    SQLite file. ``postgres_timezone`` is its server time zone.
    """

    def __init__(self, run_dir: Path | None = None, *, mqtt: bool = True, influx: bool = True,
                 postgres: bool = False, postgres_timezone: str = "UTC") -> None:
        self._own_dir = run_dir is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="vitalbridge-")) if run_dir is None else run_dir
        self.mosquitto = Mosquitto(self.run_dir / "mosquitto") if mqtt else None
        self.influxdb = InfluxDB(self.run_dir / "influxdb") if influx else None
        self.postgres = PostgreSQL(self.run_dir / "postgresql", timezone=postgres_timezone) if postgres else None
        self._previous_sigterm: object = None

    @property
    def mqtt_url(self) -> str:
        """URL of the broker (``mqtt://127.0.0.1:PORT``)."""
        if self.mosquitto is None:
            raise RuntimeError("this stack was made without Mosquitto")
        return self.mosquitto.url

    @property
    def influx_url(self) -> str:
        """URL of InfluxDB's HTTP API."""
        if self.influxdb is None:
            raise RuntimeError("this stack was made without InfluxDB")
        return self.influxdb.url

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the PostgreSQL database (``postgresql+psycopg://...``)."""
        if self.postgres is None:
            raise RuntimeError("this stack was made without PostgreSQL")
        return self.postgres.url

    def start(self) -> LocalStack:
        """Start every configured service; on any failure, stop those already started."""
        try:
            if self.mosquitto is not None:
                self.mosquitto.start()
            if self.influxdb is not None:
                self.influxdb.start()
            if self.postgres is not None:
                self.postgres.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every service (newest first) and remove a temporary run directory."""
        for service in (self.postgres, self.influxdb, self.mosquitto):
            if service is not None:
                service.stop()
        if self._own_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        self._previous_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        except ValueError:  # not in the main thread: leave signals alone
            self._previous_sigterm = None
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]


def _raise_keyboard_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
