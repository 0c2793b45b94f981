"""The HTTP API (FastAPI): vitals read back from InfluxDB, alerts, the registry, users, the audit trail,
ingest health; every route but health and metrics behind :mod:`cloud.auth.policy`."""

from cloud.api._app import HealthCheck, create_app, create_ops_app, default_security

__all__ = ["HealthCheck", "create_app", "create_ops_app", "default_security"]
