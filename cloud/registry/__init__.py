"""The patient registry: patients, care teams, family members, gateways (bound to a home and its patients)
and devices; and the ingest's cached view of which gateway may speak for which patient."""

from cloud.registry._registry import (
    Device,
    Gateway,
    GatewayBinding,
    GatewayBindings,
    Patient,
    Registry,
    RegistryError,
    Relation,
)

__all__ = [
    "Device",
    "Gateway",
    "GatewayBinding",
    "GatewayBindings",
    "Patient",
    "Registry",
    "RegistryError",
    "Relation",
]
