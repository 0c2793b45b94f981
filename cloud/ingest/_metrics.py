"""The ingest's Prometheus metrics, on a registry of the caller's (one per service, so tests do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["IngestMetrics"]


class IngestMetrics:
    """Counters, gauges and histograms of one ingest worker, served on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter("vb_ingest_messages",
                                "Messages handled, by outcome (stored, duplicate, refused, health)",
                                ["outcome"], registry=registry)
        self.samples = Counter("vb_ingest_samples_stored", "Values written to the time-series store",
                               registry=registry)
        self.refused = Counter("vb_ingest_refused", "Messages dead-lettered, by category", ["category"],
                               registry=registry)
        self.errors = Counter("vb_ingest_store_errors", "Transient errors that held a micro-batch, by store",
                              ["store"], registry=registry)
        self.microbatch_seconds = Histogram(
            "vb_ingest_microbatch_seconds", "Time to handle one micro-batch, from taking it to acknowledging it",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry)
        self.microbatch_messages = Histogram(
            "vb_ingest_microbatch_messages", "Messages per micro-batch",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000), registry=registry)
        self.queue_depth = Gauge("vb_ingest_queue_depth", "Messages received and not yet acknowledged",
                                 registry=registry)
        self.stalled = Gauge("vb_ingest_stalled", "1 while messages wait longer than the stall time", registry=registry)
        self.last_progress = Gauge("vb_ingest_last_progress_timestamp_seconds",
                                   "Unix time of the last acknowledged micro-batch", registry=registry)
        self.connected = Gauge("vb_ingest_broker_connected", "1 while connected to the broker", registry=registry)
        self.restarts = Counter("vb_ingest_restarts", "Times the supervised ingest task was restarted",
                                registry=registry)
        self.alerts_opened = Counter("vb_ingest_alerts_opened", "Alert episodes opened", registry=registry)
        self.late_windows = Counter("vb_ingest_late_windows", "Windows of late data re-evaluated by the rules",
                                    registry=registry)
        self.backwards = Counter("vb_ingest_sequence_backwards",
                                 "New batches whose sequence number is not above their epoch's highest",
                                 registry=registry)
        self.acks_sent = Counter("vb_ingest_gateway_acks", "Acknowledgements published to gateways",
                                 registry=registry)
        self.pruned = Counter("vb_ingest_pruned_rows", "Bookkeeping rows pruned, by table", ["table"],
                              registry=registry)
