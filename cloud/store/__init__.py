"""The relational store (SQLAlchemy 2, Alembic migrations): alerts, rule states, dead letters, the ingest log,
gateway and device health."""

from cloud.store._alerts import apply_alert_changes
from cloud.store._health import DeviceSeen, HealthUpdate, gateway_state
from cloud.store._health_models import DeviceHealth, GatewayHealth
from cloud.store._models import AlertRecord, Base, DeadLetter, GatewayEpoch, IngestedBatch, RuleStateRecord
from cloud.store._store import (
    AlertQuery,
    BatchKey,
    DeadLetterEntry,
    IngestCommit,
    IngestCommitResult,
    LoggedBatch,
    PatientLock,
    PruneResult,
    Retention,
    Store,
    open_store,
)

__all__ = [
    "AlertQuery",
    "AlertRecord",
    "Base",
    "BatchKey",
    "DeadLetter",
    "DeadLetterEntry",
    "DeviceHealth",
    "DeviceSeen",
    "GatewayEpoch",
    "GatewayHealth",
    "HealthUpdate",
    "IngestCommit",
    "IngestCommitResult",
    "IngestedBatch",
    "LoggedBatch",
    "PatientLock",
    "PruneResult",
    "Retention",
    "RuleStateRecord",
    "Store",
    "apply_alert_changes",
    "gateway_state",
    "open_store",
]
