"""Reading summaries of stored values: the server does the work (InfluxQL ``GROUP BY time`` with min/mean/max,
``last``, ``count``), so a month of 1 Hz data comes back as a few hundred rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cloud.timeseries._client import InfluxV1Client
from cloud.timeseries._lines import NUMERIC_MEASUREMENT, measurement_of

__all__ = ["Bucket", "bucket_means", "downsample", "latest_values", "reading_minutes"]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket of a metric: its start (Unix ns) and the min, mean and max of its values."""

    time_ns: int
    min: float
    mean: float
    max: float


def _patients_clause(patients: Sequence[str], params: dict[str, Any]) -> str:
    terms = []
    for index, patient in enumerate(patients):
        params[f"p{index}"] = patient
        terms.append(f'"patient" = $p{index}')
    return "(" + " OR ".join(terms) + ")"


def _metrics_clause(metrics: Sequence[str], params: dict[str, Any]) -> str:
    terms = []
    for index, metric in enumerate(metrics):
        params[f"m{index}"] = metric
        terms.append(f'"metric" = $m{index}')
    return "(" + " OR ".join(terms) + ")"


def _tagged(series: Iterable[dict[str, Any]]) -> Iterable[tuple[dict[str, str], list[list[Any]]]]:
    for entry in series:
        yield entry.get("tags") or {}, entry.get("values") or []


async def downsample(influx: InfluxV1Client, patient: str, metric: str, start_ns: int, end_ns: int,
                     interval_s: int) -> list[Bucket]:
    """``patient``'s ``metric`` with ``start_ns <= time < end_ns`` in buckets of ``interval_s`` seconds
    (aligned to the epoch, as InfluxDB aligns them); empty buckets are left out."""
    statement = (
        f'SELECT min("value"), mean("value"), max("value") FROM "{measurement_of(metric)}" '
        f'WHERE "patient" = $patient AND "metric" = $metric AND time >= {int(start_ns)} AND time < {int(end_ns)} '
        f"GROUP BY time({int(interval_s)}s) fill(none)"
    )
    series = await influx.query(statement, {"patient": patient, "metric": metric})
    rows: list[list[Any]] = series[0]["values"] if series else []
    return [Bucket(int(row[0]), float(row[1]), float(row[2]), float(row[3])) for row in rows
            if row[1] is not None]


async def latest_values(influx: InfluxV1Client, patients: Sequence[str], start_ns: int, end_ns: int, *,
                        recent_s: float = 3600.0) -> dict[str, dict[str, tuple[int, float]]]:
    """Each patient's newest numeric value of every metric with ``start_ns <= time <= end_ns``:
    patient -> metric -> ``(time_ns, value)``.

    Two queries: the last ``recent_s`` first, which finds the newest value of every stream still
    sending (a 1 Hz oximeter) in a short scan; then the whole range for the rest only (spot readings,
    streams that stopped), each patient's recent metrics left out by their tags, so that a week of a
    1 Hz stream is not read to find a value of the last second.
    """
    if not patients:
        return {}
    found: dict[str, dict[str, tuple[int, float]]] = {}

    async def read(where: str, params: dict[str, Any], from_ns: int) -> None:
        statement = (f'SELECT last("value") FROM "{NUMERIC_MEASUREMENT}" WHERE {where} '
                     f'AND time >= {int(from_ns)} AND time <= {int(end_ns)} GROUP BY "patient", "metric"')
        for tags, rows in _tagged(await influx.query(statement, params)):
            for row in rows:
                if row[1] is not None:
                    found.setdefault(tags.get("patient", ""), {})[tags.get("metric", "")] = (int(row[0]),
                                                                                          float(row[1]))

    recent_from = max(start_ns, end_ns - int(recent_s * 1e9))
    params: dict[str, Any] = {}
    await read(_patients_clause(patients, params), params, recent_from)
    if recent_from <= start_ns:
        return found
    params = {}
    terms = []
    for index, patient in enumerate(patients):
        params[f"p{index}"] = patient
        term = f'"patient" = $p{index}'
        for number, metric in enumerate(sorted(found.get(patient, {}))):
            params[f"x{index}_{number}"] = metric
            term += f' AND "metric" != $x{index}_{number}'
        terms.append(f"({term})")
    await read("(" + " OR ".join(terms) + ")", params, start_ns)
    return found


async def bucket_means(influx: InfluxV1Client, patients: Sequence[str], metrics: Sequence[str], start_ns: int,
                       end_ns: int, interval_s: int) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Mean of each numeric ``metrics`` per bucket of ``interval_s`` for each of ``patients``:
    patient -> metric -> ``[(bucket start ns, mean), ...]`` (empty buckets left out), in one query."""
    if not patients or not metrics:
        return {}
    params: dict[str, Any] = {}
    statement = (
        f'SELECT mean("value") FROM "{NUMERIC_MEASUREMENT}" WHERE {_patients_clause(patients, params)} '
        f'AND {_metrics_clause(metrics, params)} AND time >= {int(start_ns)} AND time < {int(end_ns)} '
        f'GROUP BY time({int(interval_s)}s), "patient", "metric" fill(none)'
    )
    found: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for tags, rows in _tagged(await influx.query(statement, params)):
        points = [(int(row[0]), float(row[1])) for row in rows if row[1] is not None]
        if points:
            found.setdefault(tags.get("patient", ""), {})[tags.get("metric", "")] = points
    return found


async def reading_minutes(influx: InfluxV1Client, patient: str, metrics: Sequence[str], start_ns: int,
                          end_ns: int) -> dict[str, list[int]]:
    """The minutes (start, Unix ns) in which ``patient`` has at least one value of each of ``metrics``:
    metric -> sorted minute starts. Enough to tell whether a reading fell in a window of whole minutes."""
    if not metrics:
        return {}
    params: dict[str, Any] = {"patient": patient}
    statement = (
        f'SELECT count("value") FROM "{NUMERIC_MEASUREMENT}" WHERE "patient" = $patient '
        f'AND {_metrics_clause(metrics, params)} AND time >= {int(start_ns)} AND time < {int(end_ns)} '
        'GROUP BY time(1m), "metric" fill(none)'
    )
    found: dict[str, list[int]] = {}
    for tags, rows in _tagged(await influx.query(statement, params)):
        found[tags.get("metric", "")] = sorted(int(row[0]) for row in rows if row[1])
    return found
