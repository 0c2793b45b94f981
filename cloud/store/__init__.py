"""The relational store (SQLAlchemy 2, Alembic migrations): alerts and their outbox, rule states, dead letters,
the ingest log, gateway and device health, patients' settings (versioned) and gateways' threshold messages,
the HL7 outbox, gateway enrolment codes."""

from cloud.store._alerting_models import AlertTransition, NotificationDelivery, NotificationItem, SilenceRecord
from cloud.store._alerting_store import MAX_ID, STATE_FILTERS, AlertQuery, DeliveryLog, NotificationQuery
from cloud.store._alerts import apply_alert_changes
from cloud.store._enrolment_models import EnrolmentCodeRecord
from cloud.store._health import DeviceSeen, HealthUpdate, gateway_state
from cloud.store._health_models import DeviceHealth, GatewayHealth
from cloud.store._hl7_models import Hl7OutboxRecord
from cloud.store._hl7_outbox import Hl7Outbound, Hl7OutboxStore, PendingHl7
from cloud.store._models import AlertRecord, Base, DeadLetter, GatewayEpoch, IngestedBatch, RuleStateRecord
from cloud.store._settings_models import GatewayConfigRecord, PatientSettingsCurrent, PatientSettingsVersion
from cloud.store._settings_store import SettingsConflict, SettingsRecord, SettingsStore
from cloud.store._store import (
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
    "MAX_ID",
    "STATE_FILTERS",
    "AlertQuery",
    "AlertRecord",
    "AlertTransition",
    "Base",
    "BatchKey",
    "DeadLetter",
    "DeadLetterEntry",
    "DeviceHealth",
    "DeviceSeen",
    "DeliveryLog",
    "EnrolmentCodeRecord",
    "GatewayConfigRecord",
    "GatewayEpoch",
    "GatewayHealth",
    "HealthUpdate",
    "Hl7Outbound",
    "Hl7OutboxRecord",
    "Hl7OutboxStore",
    "IngestCommit",
    "IngestCommitResult",
    "IngestedBatch",
    "LoggedBatch",
    "PatientLock",
    "PendingHl7",
    "PatientSettingsCurrent",
    "PatientSettingsVersion",
    "NotificationDelivery",
    "NotificationItem",
    "NotificationQuery",
    "PruneResult",
    "Retention",
    "RuleStateRecord",
    "SettingsConflict",
    "SettingsRecord",
    "SettingsStore",
    "SilenceRecord",
    "Store",
    "apply_alert_changes",
    "gateway_state",
    "open_store",
]
