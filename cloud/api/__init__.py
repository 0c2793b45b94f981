"""The HTTP API (FastAPI): vitals read back from InfluxDB, alerts, ingest health."""

from cloud.api._app import HealthCheck, create_app, create_ops_app

__all__ = ["HealthCheck", "create_app", "create_ops_app"]
