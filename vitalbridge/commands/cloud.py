"""`vitalbridge cloud run`: ingest + rules + API, configured by flags or VB_* environment variables."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``cloud`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("cloud", help="run the cloud service")
    commands = parser.add_subparsers(dest="cloud_command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="ingest from MQTT into InfluxDB, evaluate rules, serve the API",
        description="Flags override the environment: VB_MQTT_URL, VB_INFLUX_URL, VB_INFLUX_DB, "
        "VB_INFLUX_TOKEN, VB_DATABASE_URL, VB_HTTP_HOST, VB_HTTP_PORT.",
    )
    run.add_argument("--mqtt-url", help="broker, e.g. mqtt://127.0.0.1:1883 (VB_MQTT_URL)")
    run.add_argument("--influx-url", help="InfluxDB HTTP API, e.g. http://127.0.0.1:8086 (VB_INFLUX_URL)")
    run.add_argument("--influx-db", help="InfluxDB database (VB_INFLUX_DB)")
    run.add_argument("--database-url", help="SQLAlchemy URL of the relational store (VB_DATABASE_URL)")
    run.add_argument("--host", dest="http_host", help="address the API listens on (VB_HTTP_HOST)")
    run.add_argument("--port", dest="http_port", type=int, help="port the API listens on (VB_HTTP_PORT)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cloud.service import CloudConfig, CloudService
    from vitalbridge._signals import stop_on_signals

    try:
        config = CloudConfig.from_env(
            mqtt_url=args.mqtt_url, influx_url=args.influx_url, influx_db=args.influx_db,
            database_url=args.database_url, http_host=args.http_host, http_port=args.http_port,
        )
    except ValueError as exc:
        print(f"vitalbridge cloud run: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        service = CloudService(config)
        await service.start()
        print(f"VitalBridge cloud: API on {service.api_url}/api/v1 (docs {service.api_url}/api/docs)", flush=True)
        stop = asyncio.Event()
        try:
            with stop_on_signals(stop):
                await stop.wait()
        finally:
            await service.stop()

    try:
        asyncio.run(main())
    except (OSError, TimeoutError) as exc:
        print(f"vitalbridge cloud run: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
