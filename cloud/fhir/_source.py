"""Where the FHIR views read from: the registry and alerts (SQL) and the values (InfluxDB), page by page.

Nothing here reads a whole range at once: numeric values come ``count`` rows per query, waveforms one
window per query, so a year's export and a one-page search use the same small memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from cloud.fhir._observation import StoredValue, WaveformWindow
from cloud.fhir._search import TimeRange
from cloud.registry import Device, Gateway, Patient, Registry
from cloud.store import AlertQuery, AlertRecord, Store
from cloud.timeseries import NUMERIC_MEASUREMENT, WAVEFORM_MEASUREMENT, InfluxV1Client
from vitals.catalogue import CATALOGUE, MetricKind

__all__ = ["WAVEFORM_WINDOW_NS", "FhirSource", "Page"]

WAVEFORM_WINDOW_NS = 10 * 10**9
"""Waveforms are served in windows of 10 s aligned to the epoch: the same data gives the same Observations."""

_MAX_NS = 2**63 - 1
_MAX_ALERTS = 10_000
_MAX_AT_ONE_INSTANT = 10_000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of values and the cursor (ns, inclusive) of the next page, None at the end."""

    values: list[StoredValue]
    next_ns: int | None


def _time_bounds(start_ns: int, end_ns: int) -> str:
    clause = f" AND time >= {int(start_ns)}"
    if end_ns < _MAX_NS:
        clause += f" AND time < {int(end_ns)}"
    return clause


def _metric_clause(metrics: Iterable[str], params: dict[str, Any]) -> str:
    names = sorted(metrics)
    for index, name in enumerate(names):
        params[f"m{index}"] = name
    return " AND (" + " OR ".join(f'"metric" = $m{index}' for index in range(len(names))) + ")"


class FhirSource:
    """Reads for the FHIR views over the store (registry, alerts) and InfluxDB."""

    def __init__(self, store: Store, registry: Registry, influx: InfluxV1Client) -> None:
        self.store = store
        self.registry = registry
        self.influx = influx

    # -- registry and alerts ---------------------------------------------------------------------------
    async def patient(self, patient_id: str) -> Patient | None:
        """The registered patient, or None."""
        return await asyncio.to_thread(self.registry.patient, patient_id)

    async def devices(self, patient_ids: Iterable[str] | None) -> list[Device]:
        """The devices bound to ``patient_ids`` (None: every device)."""
        return await asyncio.to_thread(self.registry.devices, None if patient_ids is None else list(patient_ids))

    async def all_gateways(self) -> list[Gateway]:
        """Every registered gateway."""
        return await asyncio.to_thread(self.registry.gateways)

    async def gateways(self, gateway_ids: Iterable[str]) -> list[Gateway]:
        """The registered gateways among ``gateway_ids``."""
        found = [await asyncio.to_thread(self.registry.gateway, gateway) for gateway in sorted(set(gateway_ids))]
        return [gateway for gateway in found if gateway is not None]

    async def alerts(self, patient: str, span: TimeRange, limit: int = _MAX_ALERTS) -> list[AlertRecord]:
        """``patient``'s alerts that fired in ``span``, oldest first."""
        records = await asyncio.to_thread(self.store.alerts, AlertQuery(patient=patient, limit=limit))
        return sorted((r for r in records if span.start_ns <= r.fired_ns < span.end_ns),
                      key=lambda r: (r.fired_ns, r.id))

    # -- numeric values --------------------------------------------------------------------------------
    async def numeric_page(self, patient: str, metrics: Iterable[str], span: TimeRange, count: int) -> Page:
        """Up to about ``count`` values from ``span.start_ns`` on, oldest first; every value of one instant
        is on the same page (so a blood pressure's parts are never split), and the cursor is that instant."""
        rows = await self._numeric_rows(patient, metrics, span.start_ns, span.end_ns, count + 1)
        if len(rows) <= count:
            return Page(rows, None)
        boundary = rows[count].time_ns
        kept = [row for row in rows if row.time_ns < boundary]
        if kept:
            return Page(kept, boundary)
        # More than ``count`` values at one instant: serve that instant whole.
        whole = await self._numeric_rows(patient, metrics, boundary, boundary + 1, _MAX_AT_ONE_INSTANT)
        return Page(whole, boundary + 1 if boundary + 1 < span.end_ns else None)

    async def numeric_values(self, patient: str, metrics: Iterable[str], span: TimeRange,
                             page_size: int = 5000) -> AsyncIterator[list[StoredValue]]:
        """Every value in ``span``, a page at a time."""
        chosen = list(metrics)
        start = span.start_ns
        while True:
            page = await self.numeric_page(patient, chosen, TimeRange(start, span.end_ns), page_size)
            if page.values:
                yield page.values
            if page.next_ns is None:
                return
            start = page.next_ns

    async def _numeric_rows(self, patient: str, metrics: Iterable[str], start_ns: int, end_ns: int,
                            limit: int) -> list[StoredValue]:
        params: dict[str, Any] = {"patient": patient}
        statement = (f'SELECT "value", "quality", "metric", "device" FROM "{NUMERIC_MEASUREMENT}" '
                     f'WHERE "patient" = $patient{_metric_clause(metrics, params)}{_time_bounds(start_ns, end_ns)} '
                     f"ORDER BY time ASC LIMIT {int(limit)}")
        series = await self.influx.query(statement, params)
        if not series:
            return []
        columns: list[str] = series[0]["columns"]
        at = {name: columns.index(name) for name in ("time", "value", "quality", "metric", "device")}
        return [StoredValue(patient, str(row[at["device"]]), str(row[at["metric"]]), int(row[at["time"]]),
                            float(row[at["value"]]), int(row[at["quality"]] or 0))
                for row in series[0]["values"] if row[at["metric"]] in CATALOGUE]

    # -- waveforms -------------------------------------------------------------------------------------
    async def waveform_windows(self, patient: str, metrics: Iterable[str], span: TimeRange,
                               count: int) -> tuple[list[WaveformWindow], int | None]:
        """Up to ``count`` waveform windows (per device and metric) from ``span.start_ns`` on, and the cursor of
        the next page. A window overlapping the span is served whole."""
        chosen = [m for m in metrics if CATALOGUE[m].kind is MetricKind.WAVEFORM]
        windows: list[WaveformWindow] = []
        start = span.start_ns
        while len(windows) < count and chosen:
            first = await self._waveform_first(patient, chosen, start, span.end_ns)
            if first is None:
                return windows, None
            window_start = first - first % WAVEFORM_WINDOW_NS
            window_end = window_start + WAVEFORM_WINDOW_NS
            windows.extend(await self._waveform_window(patient, chosen, window_start, window_end))
            start = window_end
            if start >= span.end_ns:
                return windows, None
        if not chosen or await self._waveform_first(patient, chosen, start, span.end_ns) is None:
            return windows, None  # no link to an empty page
        return windows, start

    async def _waveform_first(self, patient: str, metrics: list[str], start_ns: int, end_ns: int) -> int | None:
        params: dict[str, Any] = {"patient": patient}
        statement = (f'SELECT "value" FROM "{WAVEFORM_MEASUREMENT}" WHERE "patient" = $patient'
                     f"{_metric_clause(metrics, params)}{_time_bounds(start_ns, end_ns)} ORDER BY time ASC LIMIT 1")
        series = await self.influx.query(statement, params)
        return int(series[0]["values"][0][0]) if series and series[0]["values"] else None

    async def _waveform_window(self, patient: str, metrics: list[str], start_ns: int,
                               end_ns: int) -> list[WaveformWindow]:
        params: dict[str, Any] = {"patient": patient}
        most = int(max(CATALOGUE[m].max_hz for m in metrics) * WAVEFORM_WINDOW_NS / 1e9) * 4 + 16
        statement = (f'SELECT "value", "metric", "device" FROM "{WAVEFORM_MEASUREMENT}" WHERE "patient" = $patient'
                     f"{_metric_clause(metrics, params)}{_time_bounds(start_ns, end_ns)} "
                     f"ORDER BY time ASC LIMIT {most}")
        series = await self.influx.query(statement, params)
        grouped: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        for time_ns, value, metric, device in (series[0]["values"] if series else []):
            times, values = grouped.setdefault((str(metric), str(device)), ([], []))
            times.append(int(time_ns))
            values.append(float(value))
        return [WaveformWindow(patient, device, metric, times, values)
                for (metric, device), (times, values) in sorted(grouped.items())]
