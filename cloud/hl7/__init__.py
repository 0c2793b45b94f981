"""HL7 v2 outbound: device observations (IHE PCD-01 ``ORU^R01``) and alerts (PCD-04 ``ORU^R40``) over MLLP."""

from cloud.hl7._build import (
    DEFAULT_HEADER,
    PCD01_PROFILE,
    PCD04_PROFILE,
    AlertReport,
    MessageHeader,
    ObservationReport,
    alert_control_id,
    batch_control_id,
    batch_report,
    build_oru_r01,
    build_oru_r40,
    export_control_id,
    format_value,
    hl7_time,
)
from cloud.hl7._channel import Hl7AlertChannel, alert_message
from cloud.hl7._codes import LOCAL_CODING_SYSTEM, MDC_UNITS, ObservationCodes, numeric_metrics, observation_codes
from cloud.hl7._export import ExportResult, export_observations
from cloud.hl7._mllp import Ack, Hl7SendError, MllpClient, MllpEndpoint, parse_ack, parse_mllp_url
from cloud.hl7._sender import BatchForwarder, Hl7Metrics, Hl7Outbox, Hl7Sender, Hl7SenderSettings

__all__ = [
    "LOCAL_CODING_SYSTEM",
    "DEFAULT_HEADER",
    "MDC_UNITS",
    "PCD01_PROFILE",
    "PCD04_PROFILE",
    "Ack",
    "AlertReport",
    "BatchForwarder",
    "ExportResult",
    "Hl7AlertChannel",
    "Hl7Metrics",
    "Hl7Outbox",
    "Hl7SendError",
    "Hl7Sender",
    "Hl7SenderSettings",
    "MessageHeader",
    "MllpClient",
    "MllpEndpoint",
    "ObservationCodes",
    "ObservationReport",
    "alert_control_id",
    "alert_message",
    "batch_control_id",
    "batch_report",
    "build_oru_r01",
    "build_oru_r40",
    "export_control_id",
    "export_observations",
    "format_value",
    "hl7_time",
    "numeric_metrics",
    "observation_codes",
    "parse_ack",
    "parse_mllp_url",
]
