"""Batch -> InfluxDB line protocol (pure).

One point per value. Measurement ``vitals`` for numerics and ``waveforms`` for waveforms (so they
can get different retention policies); tags ``patient``, ``metric``, ``device`` (bounded
cardinality); fields ``value`` (float) and ``quality`` (integer). A point is keyed by measurement,
tags and time, so a replayed batch overwrites itself instead of counting twice.
"""

from __future__ import annotations

from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import Batch

__all__ = ["NUMERIC_MEASUREMENT", "WAVEFORM_MEASUREMENT", "batch_to_lines", "escape_tag", "measurement_of"]

NUMERIC_MEASUREMENT = "vitals"
WAVEFORM_MEASUREMENT = "waveforms"

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def escape_tag(text: str) -> str:
    """Escape a tag key or value for line protocol."""
    return text.translate(_TAG_ESCAPES)


def measurement_of(metric: str) -> str:
    """The measurement a catalogue metric's points are stored in."""
    return WAVEFORM_MEASUREMENT if CATALOGUE[metric].kind is MetricKind.WAVEFORM else NUMERIC_MEASUREMENT


def batch_to_lines(batch: Batch) -> list[str]:
    """Return the line protocol lines (nanosecond precision) for every value of ``batch``."""
    lines: list[str] = []
    for stream in batch.streams:
        prefix = (
            f"{measurement_of(stream.metric)},device={escape_tag(batch.device)},metric={escape_tag(stream.metric)},"
            f"patient={escape_tag(batch.patient)} value="
        )
        # repr of a Python float is the shortest exact form, so values round-trip through InfluxDB.
        values = stream.values.tolist()
        qualities = stream.quality.tolist()
        times = stream.times_ns.tolist()
        lines.extend(
            f"{prefix}{value!r},quality={quality}i {time}"
            for value, quality, time in zip(values, qualities, times, strict=True)
        )
    return lines


