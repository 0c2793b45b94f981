"""The cloud service: ingest worker + HTTP API in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from cloud.api import create_app
from cloud.ingest import IngestProcessor, MqttIngestWorker
from cloud.rules import build_rules
from cloud.store import Store, open_store
from cloud.timeseries import InfluxV1Client

__all__ = ["CloudConfig", "CloudService"]

log = logging.getLogger(__name__)


@dataclass
class CloudConfig:
    """Where the cloud finds its broker, InfluxDB and relational database, and where it listens.

    :meth:`from_env` reads ``VB_MQTT_URL``, ``VB_INFLUX_URL``, ``VB_INFLUX_DB``, ``VB_INFLUX_TOKEN``,
    ``VB_DATABASE_URL``, ``VB_HTTP_HOST`` and ``VB_HTTP_PORT``.
    """

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "vitalbridge"
    influx_token: str | None = None
    database_url: str = "sqlite:///vitalbridge.db"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    client_id: str = "vitalbridge-ingest"
    rules: list[dict[str, Any]] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> CloudConfig:
        """Defaults, then the environment, then non-None ``overrides`` (command-line flags)."""
        config = cls()
        names = {
            "VB_MQTT_URL": "mqtt_url", "VB_INFLUX_URL": "influx_url", "VB_INFLUX_DB": "influx_db",
            "VB_INFLUX_TOKEN": "influx_token", "VB_DATABASE_URL": "database_url",
            "VB_HTTP_HOST": "http_host", "VB_HTTP_PORT": "http_port",
        }
        for variable, attribute in names.items():
            if variable in environ:
                value: Any = environ[variable]
                if attribute == "http_port":
                    try:
                        value = int(value)
                    except ValueError:
                        raise ValueError(f"{variable} must be a port number, not {value!r}") from None
                setattr(config, attribute, value)
        for attribute, value in overrides.items():
            if value is not None:
                setattr(config, attribute, value)
        return config


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class CloudService:
    """Runs ingest and the API until stopped. ``await service.start()`` then ``await service.stop()``."""

    def __init__(self, config: CloudConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.influx: InfluxV1Client | None = None
        self.processor: IngestProcessor | None = None
        self.worker: MqttIngestWorker | None = None
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP API."""
        port = self.config.http_port
        if self._server is not None and self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.config.http_host}:{port}"

    async def start(self) -> None:
        """Open the stores, connect the ingest and start serving HTTP."""
        config = self.config
        self.store = open_store(config.database_url)
        self.influx = InfluxV1Client(config.influx_url, config.influx_db, token=config.influx_token)
        await self.influx.create_database()
        rules = build_rules(config.rules)
        self.processor = IngestProcessor(self.store, self.influx, rules, clock=time.time_ns)
        self.worker = MqttIngestWorker(self.processor, config.mqtt_url, client_id=config.client_id)
        await self.worker.start()
        self._tasks.append(asyncio.create_task(self.worker.run(), name="ingest"))
        processor = self.processor
        app = create_app(self.store, self.influx, stats=lambda: processor.stats)
        server_config = uvicorn.Config(app, host=config.http_host, port=config.http_port, log_level="warning",
                                       lifespan="off")
        self._server = _QuietServer(server_config)
        self._tasks.append(asyncio.create_task(self._server.serve(), name="http"))
        while not self._server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # surfaces a bind error
            await asyncio.sleep(0.02)
        log.info("cloud API listening on %s", self.api_url)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every message already received has been handled."""
        if self.worker is None:
            return
        deadline = time.monotonic() + timeout_s
        while not self.worker.idle and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop serving, disconnect and close the stores."""
        if self._server is not None:
            self._server.should_exit = True
        for task in reversed(self._tasks):
            if task.get_name() == "ingest":
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.worker is not None:
            await self.worker.stop()
        if self.influx is not None:
            await self.influx.aclose()
        if self.store is not None:
            self.store.close()
