"""The audit trail: every read and change of patient data, append-only and hash-chained."""

from cloud.audit._chain import CHAINED_FIELDS, GENESIS, ChainVerdict, row_hash, verify_chain
from cloud.audit._log import AuditEntry, AuditEvent, AuditLog, AuditQuery

__all__ = [
    "CHAINED_FIELDS",
    "GENESIS",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditQuery",
    "ChainVerdict",
    "row_hash",
    "verify_chain",
]
