"""The HTTP API (FastAPI): vitals read back from InfluxDB, alerts, ingest health."""

from cloud.api._app import create_app

__all__ = ["create_app"]
