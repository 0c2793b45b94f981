"""The relational store (SQLAlchemy 2, Alembic migrations): alerts and their outbox, rule states, dead letters,
the ingest log."""

from cloud.store._alerting_models import AlertTransition, NotificationDelivery, NotificationItem, SilenceRecord
from cloud.store._alerting_store import MAX_ID, STATE_FILTERS, AlertQuery, DeliveryLog, NotificationQuery
from cloud.store._alerts import apply_alert_changes
from cloud.store._models import AlertRecord, Base, DeadLetter, GatewayEpoch, IngestedBatch, RuleStateRecord
from cloud.store._store import (
    BatchKey,
    DeadLetterEntry,
    IngestCommit,
    IngestCommitResult,
    LoggedBatch,
    PruneResult,
    Retention,
    Store,
    open_store,
)

__all__ = [
    "MAX_ID",
    "STATE_FILTERS",
    "AlertQuery",
    "AlertRecord",
    "AlertTransition",
    "Base",
    "BatchKey",
    "DeadLetter",
    "DeadLetterEntry",
    "DeliveryLog",
    "GatewayEpoch",
    "IngestCommit",
    "IngestCommitResult",
    "IngestedBatch",
    "LoggedBatch",
    "NotificationDelivery",
    "NotificationItem",
    "NotificationQuery",
    "PruneResult",
    "Retention",
    "RuleStateRecord",
    "SilenceRecord",
    "Store",
    "apply_alert_changes",
    "open_store",
]
