"""Ingest: MQTT batches -> decode, validate, dedup -> InfluxDB and the rules engine."""

from cloud.ingest._mqtt import MqttIngestWorker
from cloud.ingest._processor import IngestProcessor, IngestStats, Outcome

__all__ = ["IngestProcessor", "IngestStats", "MqttIngestWorker", "Outcome"]
