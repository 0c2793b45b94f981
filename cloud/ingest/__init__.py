"""Ingest: MQTT micro-batches -> triage, dedup -> InfluxDB, rules, one store transaction -> acknowledgements."""

from cloud.ingest._errors import StoreRefused, TransientError
from cloud.ingest._gateway_config import GatewayConfigPublisher, PublishRetained
from cloud.ingest._metrics import IngestMetrics
from cloud.ingest._mqtt import BrokerUnavailable, MqttIngestClient
from cloud.ingest._processor import (
    BindingLookup,
    Disposition,
    InboundMessage,
    IngestProcessor,
    Outcome,
    ProcessResult,
    registry_refusal,
)
from cloud.ingest._settings_cache import SettingsCache
from cloud.ingest._triage import Accepted, IngestLimits, Refused, peek_key, triage
from cloud.ingest._worker import IngestStats, IngestWorker, WorkerSettings

__all__ = [
    "Accepted",
    "BindingLookup",
    "BrokerUnavailable",
    "Disposition",
    "GatewayConfigPublisher",
    "InboundMessage",
    "IngestLimits",
    "IngestMetrics",
    "IngestProcessor",
    "IngestStats",
    "IngestWorker",
    "MqttIngestClient",
    "Outcome",
    "ProcessResult",
    "PublishRetained",
    "Refused",
    "SettingsCache",
    "StoreRefused",
    "TransientError",
    "WorkerSettings",
    "peek_key",
    "registry_refusal",
    "triage",
]
