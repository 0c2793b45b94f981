"""How bytes reach the gateway: one interface for BLE, serial and virtual devices.

A transport runs until cancelled, reconnecting by itself, and hands every payload it receives to
``deliver`` and every device-level happening (attached, lost, battery) to ``report``. Transports are
chosen by the device config's ``transport`` key from a registry built in one place.
"""

from edge.transports._backoff import OPTIONS_CONFIG, PositiveInt, Seconds, options_from
from edge.transports._base import (
    DeliverFn,
    Payload,
    ReportFn,
    SpoolingDeliver,
    Transport,
    TransportFactory,
    TransportRegistry,
    wait_spooled,
)

__all__ = [
    "OPTIONS_CONFIG",
    "DeliverFn",
    "Payload",
    "PositiveInt",
    "ReportFn",
    "Seconds",
    "SpoolingDeliver",
    "Transport",
    "TransportFactory",
    "TransportRegistry",
    "options_from",
    "wait_spooled",
]
