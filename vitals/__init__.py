"""The shared kernel of VitalBridge: the metric catalogue, sample types, wire codec and topics."""

from vitals.acks import AckError, StoredAck, decode_ack, encode_ack
from vitals.catalogue import CATALOGUE, Metric, MetricKind, UnknownMetricError, get_metric
from vitals.codec import WIRE_VERSION, WireError, decode_batch, encode_batch
from vitals.samples import Batch, Quality, Sample, Stream, is_identifier
from vitals.topics import (
    ack_topic,
    command_topic,
    config_topic,
    data_topic,
    events_topic,
    gateway_of,
    status_topic,
)
from vitals.validate import check_density, check_plausible

__all__ = [
    "CATALOGUE",
    "AckError",
    "StoredAck",
    "WIRE_VERSION",
    "Batch",
    "Metric",
    "MetricKind",
    "Quality",
    "Sample",
    "Stream",
    "UnknownMetricError",
    "WireError",
    "ack_topic",
    "check_density",
    "check_plausible",
    "command_topic",
    "config_topic",
    "data_topic",
    "decode_ack",
    "decode_batch",
    "encode_ack",
    "encode_batch",
    "events_topic",
    "gateway_of",
    "get_metric",
    "is_identifier",
    "status_topic",
]
