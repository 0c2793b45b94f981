"""The broker's security: the PKI (CA, the broker's certificate, the cloud's accounts) and gateway
accounts kept by Mosquitto's dynamic-security plugin, each limited to its own topics."""

from cloud.broker._accounts import BrokerAccounts, BrokerAccountsError, GatewayCredentials
from cloud.broker._dynsec import gateway_acls, ingest_acls, initial_state
from cloud.broker._pki import (
    ADMIN_USER,
    INGEST_USER,
    PkiError,
    PkiFiles,
    PkiResult,
    init_pki,
    parse_subject_name,
    read_credentials,
)

__all__ = [
    "ADMIN_USER",
    "INGEST_USER",
    "BrokerAccounts",
    "BrokerAccountsError",
    "GatewayCredentials",
    "PkiError",
    "PkiFiles",
    "PkiResult",
    "gateway_acls",
    "ingest_acls",
    "init_pki",
    "initial_state",
    "parse_subject_name",
    "read_credentials",
]
