"""Reading stored values back as samples (the rules' view of history)."""

from __future__ import annotations

from typing import Any

from cloud.timeseries._client import InfluxV1Client
from cloud.timeseries._lines import measurement_of
from vitals.samples import Sample

__all__ = ["read_samples"]


async def read_samples(influx: InfluxV1Client, patient: str, metric: str, start_ns: int, end_ns: int,
                       *, limit: int = 1_000_000) -> list[Sample]:
    """``patient``'s stored values of ``metric`` with ``start_ns <= time <= end_ns``, oldest first."""
    statement = (
        f'SELECT "value", "quality" FROM "{measurement_of(metric)}" WHERE "patient" = $patient '
        f'AND "metric" = $metric AND time >= {int(start_ns)} AND time <= {int(end_ns)} '
        f"ORDER BY time ASC LIMIT {int(limit)}"
    )
    series = await influx.query(statement, {"patient": patient, "metric": metric})
    rows: list[list[Any]] = series[0]["values"] if series else []
    return [Sample(metric, int(row[0]), float(row[1]), int(row[2] or 0)) for row in rows]
