"""Which spooled batches may be dropped when the spool is full, and in which order (pure).

When the spool reaches its quota (a long outage, a small SD card) it makes room for new batches
by dropping old ones, least important first: waveform batches (oldest first), then routine
numerics (oldest first). Alert-relevant readings are never dropped:

* a reading beyond its metric's alert threshold (:data:`edge.pipeline.thresholds.DEFAULT_THRESHOLDS`,
  the same bands the edge's compression never smooths away), and
* spot measurements a person takes on purpose (blood pressure, weight, glucose, temperature): a few
  values a day, each one a clinical record.

Events (device attached/lost, battery, spool drops) are not spooled batches and are never dropped
by the quota. A batch carrying several kinds is as important as its most important stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np

from edge.pipeline.thresholds import DEFAULT_THRESHOLDS, Thresholds
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import Batch, Stream

__all__ = ["SPOT_METRICS", "SpoolPriority", "batch_priority", "default_thresholds", "stream_priority"]


class SpoolPriority(IntEnum):
    """How a spooled batch is treated at the quota: higher values are dropped first."""

    ALERT = 0
    """Alert-relevant readings: never dropped to make room."""
    ROUTINE = 1
    """Continuous numerics within their alert band: dropped after every waveform batch."""
    WAVEFORM = 2
    """Waveform blocks (ECG, pleth): dropped first."""


SPOT_METRICS: frozenset[str] = frozenset(
    {"bp_systolic", "bp_diastolic", "bp_mean", "body_weight", "blood_glucose", "body_temperature"}
)
"""Metrics measured on purpose, a few times a day: every reading is kept."""


def default_thresholds() -> dict[str, Thresholds]:
    """The edge's default alert bands per metric (see :mod:`edge.pipeline.thresholds`)."""
    return {metric: Thresholds(low, high) for metric, (low, high) in DEFAULT_THRESHOLDS.items()}


_DEFAULTS = default_thresholds()


def stream_priority(stream: Stream, thresholds: Mapping[str, Thresholds] = _DEFAULTS) -> SpoolPriority:
    """The priority of one stream: waveform, routine numeric, or alert-relevant (see the module doc)."""
    if CATALOGUE[stream.metric].kind is MetricKind.WAVEFORM:
        return SpoolPriority.WAVEFORM
    if stream.metric in SPOT_METRICS:
        return SpoolPriority.ALERT
    band = thresholds.get(stream.metric)
    if band is not None and len(stream) and bool(np.any(band.crossing(stream.values))):
        return SpoolPriority.ALERT
    return SpoolPriority.ROUTINE


def batch_priority(batch: Batch, thresholds: Mapping[str, Thresholds] = _DEFAULTS) -> SpoolPriority:
    """The priority of ``batch``: that of its most important stream (``ALERT`` for an empty batch)."""
    return min((stream_priority(s, thresholds) for s in batch.streams), default=SpoolPriority.ALERT)
