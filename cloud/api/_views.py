"""The web app's JSON views: the doctor's worklist, a patient's downsampled chart, ECG/PPG strips, the
one-week summary and the family's "today" page.

Every route goes through the policy (:mod:`cloud.auth.policy`, ``vitals.read``): a patient route is
answered 404 for a patient the caller has no relation to; the worklist lists only the caller's patients
and tells the audit trail which ones it read. The numbers come from :mod:`cloud.views` (pure); this
module only gathers the values (InfluxDB with server-side aggregation, the relational store) and
shapes the answer. Times are ISO 8601 in UTC (``Z``); values are in catalogue units.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import statistics
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request

from cloud.api._sparklines import SparklineCache
from cloud.auth import ERROR_RESPONSES, ApiError
from cloud.auth.policy import Permission, Principal, note_patients, require
from cloud.registry import Patient, Registry
from cloud.rules import PatientSettings
from cloud.store import AlertQuery, AlertRecord, DeviceHealth, GatewayHealth, SettingsStore, Store, gateway_state
from cloud.timeseries import (
    InfluxError,
    InfluxV1Client,
    bucket_means,
    downsample,
    latest_values,
    read_samples,
    reading_minutes,
)
from cloud.views import (
    NEWS2_METRICS,
    SEVERITY_ORDER,
    Latest,
    WorklistFacts,
    adherence,
    ambulatory_glucose_profile,
    blood_pressure_summary,
    bucket_interval_s,
    due_on,
    fresh,
    mmol_to_mg_dl,
    news2_from_values,
    rank_worklist,
    reading_range,
    reading_status,
    silent_since_ns,
    time_in_ranges,
    top_severity,
    weight_change,
)
from vitals.catalogue import CATALOGUE, MetricKind

__all__ = ["SPARKLINE_METRICS", "ViewOptions", "views_router"]

SPARKLINE_METRICS: tuple[str, ...] = ("spo2", "heart_rate", "pulse_rate", "respiratory_rate", "bp_systolic",
                                      "bp_diastolic", "body_temperature", "body_weight", "blood_glucose")
"""The key vitals the worklist draws a 7-day sparkline of (those the patient has data of)."""

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
_DAY_NS = 24 * _HOUR_NS
_MAX_READINGS = 50_000
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """Tunables of the views.

    ``news2_max_age_s``: readings older than this do not enter the worklist's NEWS2 (home readings are
    spot checks, so hours rather than the ward's minutes); ``gateway_silent_s``: an online gateway
    silent this long is ``unknown``; ``device_silent_s``: a device with no reading this long is
    ``silent_since`` its last one on the family page; ``sparkline_days`` and ``sparkline_bucket_s``
    shape the worklist's sparklines; ``adherence_days`` is the period adherence is counted over.
    """

    news2_max_age_s: float = 12 * 3600.0
    gateway_silent_s: float = 900.0
    device_silent_s: float = 24 * 3600.0
    sparkline_days: int = 7
    sparkline_bucket_s: int = 7200
    adherence_days: int = 7


def _iso(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns / _NS, dt.UTC).isoformat().replace("+00:00", "Z")


def _iso_dt(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _ns(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return int(aware.timestamp()) * _NS + aware.microsecond * 1000


def _dt_ns(value: dt.datetime | None) -> int | None:
    return None if value is None else _ns(value)


async def _influx(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except InfluxError as exc:
        raise ApiError(503, f"time-series store unavailable: {exc}") from None


def _latest_out(latest: Mapping[str, tuple[int, float]]) -> dict[str, Any]:
    return {metric: {"value": value, "unit": CATALOGUE[metric].unit, "time": _iso(time_ns)}
            for metric, (time_ns, value) in sorted(latest.items()) if metric in CATALOGUE}


def _as_latest(latest: Mapping[str, tuple[int, float]]) -> dict[str, Latest]:
    return {metric: Latest(time_ns, value) for metric, (time_ns, value) in latest.items()}


def _news2_then(sparklines: Mapping[str, Sequence[tuple[int, float]]], at_ns: int,
                max_age_s: float) -> dict[str, Latest]:
    """The newest bucket mean of each NEWS2 metric at ``at_ns`` (no older than ``max_age_s``)."""
    found: dict[str, Latest] = {}
    for metric in NEWS2_METRICS:
        points = [p for p in sparklines.get(metric, ()) if p[0] <= at_ns]
        if points:
            found[metric] = Latest(*points[-1])
    return fresh(found, at_ns, max_age_s)


def _news2_out(latest: Mapping[str, tuple[int, float]], sparklines: Mapping[str, Sequence[tuple[int, float]]],
               settings: PatientSettings, now_ns: int, max_age_s: float) -> dict[str, Any] | None:
    score = news2_from_values(fresh(_as_latest(latest), now_ns, max_age_s), settings)
    if score is None:
        return None
    earlier = news2_from_values(_news2_then(sparklines, now_ns - _DAY_NS, max_age_s), settings)
    return {"total": score.total, "band": score.band, "partial": score.partial,
            "trend": None if earlier is None else score.total - earlier.total,
            "parts": score.parts, "missing": list(score.missing), "scale": score.scale}


def _alert_counts(alerts: Iterable[AlertRecord], states: Iterable[str]) -> dict[str, int]:
    wanted = set(states)
    counts = dict.fromkeys(SEVERITY_ORDER, 0)
    for alert in alerts:
        if alert.state in wanted:
            severity = "urgent" if alert.severity == "high" else alert.severity
            counts[severity] = counts.get(severity, 0) + 1
    return counts


@dataclass
class _Health:
    """Gateway and device health rows, and which gateways the registry binds to which patients."""

    gateways: dict[str, GatewayHealth]
    devices: list[DeviceHealth]
    bound: dict[str, list[str]]  # patient -> gateways

    def gateway_of(self, patient: str) -> GatewayHealth | None:
        names = [*self.bound.get(patient, ()),
                 *sorted({d.gateway for d in self.devices if d.patient == patient})]
        for name in names:
            if name in self.gateways:
                return self.gateways[name]
        return None

    def devices_of(self, patient: str) -> list[DeviceHealth]:
        return sorted((d for d in self.devices if d.patient == patient), key=lambda d: (d.device, d.gateway))


def _load_health(store: Store, registry: Registry, patients: Sequence[str]) -> _Health:
    wanted = set(patients)
    bound: dict[str, list[str]] = {}
    for gateway in registry.gateways():
        for patient in gateway.patients:
            if patient in wanted:
                bound.setdefault(patient, []).append(gateway.id)
    devices = [d for d in store.device_health() if d.patient in wanted]
    gateways = {g.gateway: g for g in store.gateway_health()}
    return _Health(gateways, devices, bound)


def _gateway_out(record: GatewayHealth | None, now: dt.datetime, silent_s: float) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"gateway": record.gateway, "state": gateway_state(record, now, silent_s), "backlog": record.backlog,
            "battery": None, "last_seen": _iso_dt(record.last_seen)}


def _device_out(record: DeviceHealth, now_ns: int, silent_s: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"device": record.device, "gateway": record.gateway, "link": record.link,
                           "battery": record.battery, "last_seen": _iso_dt(record.last_reading)}
    if silent_s is not None:
        silent = silent_since_ns(_dt_ns(record.last_reading), now_ns, silent_s)
        out["silent_since"] = None if silent is None else _iso(silent)
    return out


def _hours_since(latest: Mapping[str, tuple[int, float]], devices: Iterable[DeviceHealth],
                 now_ns: int) -> tuple[int | None, float | None]:
    times = [t for t, _v in latest.values()]
    times += [t for t in (_dt_ns(d.last_reading) for d in devices) if t is not None]
    if not times:
        return None, None
    newest = max(times)
    return newest, round(max(0, now_ns - newest) / _HOUR_NS, 2)


def _thread(function: Callable[..., _T], *args: Any) -> Awaitable[_T]:
    return asyncio.to_thread(function, *args)


def views_router(store: Store, influx: InfluxV1Client, clock: Callable[[], dt.datetime],
                 options: ViewOptions = ViewOptions(),
                 settings: Callable[[str], PatientSettings] | None = None) -> APIRouter:
    """The views' routes over ``store`` and ``influx``; ``settings`` gives a patient's settings (default:
    the version in force in the store, the defaults for a patient who has none saved)."""
    router = APIRouter(prefix="/api/v1", tags=["views"])
    registry = Registry(store.engine)
    sparklines = SparklineCache(options.sparkline_bucket_s * _NS)

    saved = SettingsStore(store.engine)

    def settings_of(patients: Sequence[str]) -> dict[str, PatientSettings]:  # called in a worker thread
        if settings is not None:
            return {patient: settings(patient) for patient in patients}
        records = saved.settings_of(patients)
        return {patient: records[patient].settings if patient in records else PatientSettings()
                for patient in patients}

    async def adherence_of(patient: str, patient_settings: PatientSettings, now_ns: int) -> dict[str, Any] | None:
        plan = patient_settings.care_plan
        if not plan:
            return None
        start_ns = now_ns - options.adherence_days * _DAY_NS
        minutes = await _influx(reading_minutes(influx, patient, sorted({i.metric for i in plan}), start_ns,
                                                now_ns))
        found = adherence(plan, patient_settings.time_zone, minutes, start_ns, now_ns)
        if found is None:
            return None
        ratio = found.ratio
        return {"expected": found.expected, "received": found.received,
                "ratio": None if ratio is None else round(ratio, 3), "days": options.adherence_days}

    @router.get("/worklist", responses=ERROR_RESPONSES)
    async def worklist(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        condition: Annotated[str | None, Query(max_length=64, description="only patients with this condition")] = None,
        team: Annotated[str | None, Query(max_length=64, description="only patients on this user's care team")] = None,
    ) -> list[dict[str, Any]]:
        """The caller's patients, the one needing attention first (see ``docs/views.md`` for the order)."""
        visible = sorted(principal.patients(Permission.READ_VITALS))
        records: list[Patient] = await _thread(registry.patients, visible)
        patient_settings = await _thread(settings_of, [p.id for p in records])
        chosen = [p for p in records
                  if (condition is None or condition in p.conditions
                      or condition in patient_settings[p.id].conditions)
                  and (team is None or team in p.care_team)]
        ids = [p.id for p in chosen]
        note_patients(request, ids)
        if not ids:
            return []
        now = clock()
        now_ns = _ns(now)
        bucket_ns = options.sparkline_bucket_s * _NS
        spark_start = (now_ns - options.sparkline_days * _DAY_NS) // bucket_ns * bucket_ns  # whole buckets
        alerts_task = _thread(store.alerts, AlertQuery(state="open", limit=100_000, patients=frozenset(ids)))
        health_task = _thread(_load_health, store, registry, ids)
        latest_task = _influx(latest_values(influx, ids, spark_start, now_ns))
        plan = sparklines.plan(ids, spark_start, now_ns)
        spark_tasks = [_influx(bucket_means(influx, patients, SPARKLINE_METRICS, from_ns, now_ns,
                                            options.sparkline_bucket_s)) for from_ns, patients in plan.items()]
        alerts, health, latest, reads = await asyncio.gather(alerts_task, health_task, latest_task,
                                                             asyncio.gather(*spark_tasks))
        sparks = sparklines.store(dict(zip(plan, reads, strict=True)), plan, spark_start, now_ns)
        adherences = await asyncio.gather(*(adherence_of(p, patient_settings[p], now_ns) for p in ids))
        by_patient: dict[str, list[AlertRecord]] = {}
        for alert in alerts:
            by_patient.setdefault(alert.patient, []).append(alert)
        rows: dict[str, dict[str, Any]] = {}
        facts: list[WorklistFacts] = []
        for record, adhered in zip(chosen, adherences, strict=True):
            patient = record.id
            mine = by_patient.get(patient, [])
            unacknowledged = _alert_counts(mine, ("firing",))
            own_latest = latest.get(patient, {})
            own_sparks = sparks.get(patient, {})
            devices = health.devices_of(patient)
            news2 = _news2_out(own_latest, own_sparks, patient_settings[patient], now_ns, options.news2_max_age_s)
            last_ns, hours = _hours_since(own_latest, devices, now_ns)
            conditions = sorted(set(record.conditions) | set(patient_settings[patient].conditions))
            rows[patient] = {
                "patient": patient, "display_name": record.display_name, "conditions": conditions,
                "open_alerts": _alert_counts(mine, ("pending", "firing", "acknowledged")),
                "unacknowledged_alerts": unacknowledged, "top_severity": top_severity(unacknowledged),
                "news2": news2, "last_data_at": None if last_ns is None else _iso(last_ns),
                "hours_since_data": hours, "adherence": adhered, "latest": _latest_out(own_latest),
                "sparklines": {metric: [[_iso(t), round(v, 2)] for t, v in points]
                               for metric, points in sorted(own_sparks.items())},
                "gateway": _gateway_out(health.gateway_of(patient), now, options.gateway_silent_s),
                "devices": [_device_out(d, now_ns, None) for d in devices],
            }
            facts.append(WorklistFacts(
                patient, unacknowledged, score=None if news2 is None else float(news2["total"]),
                score_trend=None if news2 is None or news2["trend"] is None else float(news2["trend"]),
                hours_since_data=hours, adherence=None if adhered is None else adhered["ratio"]))
        out = []
        for rank, fact in enumerate(rank_worklist(facts), start=1):
            out.append({**rows[fact.patient], "rank": rank})
        return out

    @router.get("/patients/{patient}/series", responses=ERROR_RESPONSES)
    async def series(
        patient: str,
        _principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        metric: Annotated[str, Query(max_length=64, description="a numeric catalogue metric, e.g. spo2")],
        start: Annotated[dt.datetime | None, Query(description="ISO 8601; default end - 24 h")] = None,
        end: Annotated[dt.datetime | None, Query(description="ISO 8601; default now")] = None,
        points: Annotated[int, Query(ge=10, le=5000, description="at most this many buckets")] = 300,
    ) -> dict[str, Any]:
        """``metric`` from ``start`` to ``end`` in buckets (min, mean, max) chosen so at most ``points`` come
        back; with the patient's range and the alerts on this metric in the period."""
        if metric not in CATALOGUE:
            raise ApiError(422, f"unknown metric {metric!r}; known: {', '.join(sorted(CATALOGUE))}")
        if CATALOGUE[metric].kind is MetricKind.WAVEFORM:
            raise ApiError(422, f"{metric} is a waveform: ask /api/v1/patients/{{patient}}/waveform for a strip")
        end_ns = _ns(end) if end is not None else _ns(clock())
        start_ns = _ns(start) if start is not None else end_ns - _DAY_NS
        if start_ns >= end_ns:
            raise ApiError(422, "start must be before end")
        interval = bucket_interval_s((end_ns - start_ns) / _NS, points)
        buckets_task = _influx(downsample(influx, patient, metric, start_ns, end_ns, interval))
        alerts_task = _thread(store.alerts, AlertQuery(patient=patient, limit=100_000))
        settings_task = _thread(settings_of, [patient])
        buckets, alerts, found = await asyncio.gather(buckets_task, alerts_task, settings_task)
        limits = reading_range(metric, found[patient])
        return {
            "patient": patient, "metric": metric, "unit": CATALOGUE[metric].unit, "start": _iso(start_ns),
            "end": _iso(end_ns), "interval_s": interval,
            "points": [{"t": _iso(b.time_ns), "min": b.min, "mean": b.mean, "max": b.max} for b in buckets],
            "thresholds": [] if limits is None else [
                {"label": limits[0], "low": limits[1].low, "high": limits[1].high}],
            "alerts": [{"id": a.id, "t": _iso(a.fired_ns), "severity": a.severity, "rule": a.rule,
                        "state": a.state, "message": a.message}
                       for a in sorted(alerts, key=lambda a: (a.fired_ns, a.id))
                       if a.metric == metric and start_ns <= a.fired_ns <= end_ns],
        }

    @router.get("/patients/{patient}/waveform", responses=ERROR_RESPONSES)
    async def waveform(
        patient: str,
        _principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        metric: Annotated[str, Query(max_length=64, description="a waveform metric: ecg or ppg")],
        around: Annotated[dt.datetime, Query(description="ISO 8601: the middle of the strip")],
        seconds: Annotated[float, Query(gt=0, le=60, description="length of the strip")] = 10.0,
    ) -> dict[str, Any]:
        """The raw samples of a waveform in the ``seconds`` around ``around`` (``rate_hz`` from their spacing)."""
        if metric not in CATALOGUE or CATALOGUE[metric].kind is not MetricKind.WAVEFORM:
            known = sorted(m for m, spec in CATALOGUE.items() if spec.kind is MetricKind.WAVEFORM)
            raise ApiError(422, f"not a waveform metric: {metric!r}; waveforms: {', '.join(known)}")
        middle = _ns(around)
        half = int(seconds * _NS / 2)
        limit = int(seconds * CATALOGUE[metric].max_hz) + 1
        samples = await _influx(read_samples(influx, patient, metric, middle - half, middle + half - 1,
                                             limit=limit))
        steps = [b.time_ns - a.time_ns for a, b in itertools.pairwise(samples) if b.time_ns > a.time_ns]
        rate = round(_NS / statistics.median(steps), 3) if steps else None
        return {"patient": patient, "metric": metric, "unit": CATALOGUE[metric].unit, "rate_hz": rate,
                "start": _iso(samples[0].time_ns) if samples else None, "values": [s.value for s in samples]}

    @router.get("/patients/{patient}/summary", responses=ERROR_RESPONSES)
    async def summary(
        patient: str,
        _principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
        days: Annotated[int, Query(ge=1, le=90, description="the period, ending now")] = 7,
    ) -> dict[str, Any]:
        """The last ``days`` of ``patient`` on one page: blood pressure by morning and evening, glucose time in
        ranges and its ambulatory profile (mg/dL), weight change, NEWS2, adherence and the newest readings."""
        now = clock()
        now_ns = _ns(now)
        start_ns = now_ns - days * _DAY_NS
        bucket_ns = options.sparkline_bucket_s * _NS

        def readings(metric: str, since_ns: int) -> Awaitable[Any]:
            return _influx(read_samples(influx, patient, metric, since_ns, now_ns, limit=_MAX_READINGS))

        found = await _thread(settings_of, [patient])
        own = found[patient]
        systolic, diastolic, glucose, weight, latest, sparks, adhered = await asyncio.gather(
            readings("bp_systolic", start_ns), readings("bp_diastolic", start_ns),
            readings("blood_glucose", start_ns), readings("body_weight", min(start_ns, now_ns - 8 * _DAY_NS)),
            _influx(latest_values(influx, [patient], start_ns, now_ns)),
            # NEWS2 a day ago, for its trend: only the buckets that can hold it.
            _influx(bucket_means(influx, [patient], list(NEWS2_METRICS),
                                 now_ns - _DAY_NS - int(options.news2_max_age_s * _NS) - bucket_ns,
                                 now_ns - _DAY_NS + bucket_ns, options.sparkline_bucket_s)),
            adherence_of(patient, own, now_ns))
        bp = blood_pressure_summary([(s.time_ns, s.value) for s in systolic],
                                    [(s.time_ns, s.value) for s in diastolic], own.time_zone)
        mg_dl = [(s.time_ns, mmol_to_mg_dl(s.value)) for s in glucose]
        ranges = time_in_ranges(v for _t, v in mg_dl)
        change = weight_change([(s.time_ns, s.value) for s in weight], own.time_zone)
        own_latest = latest.get(patient, {})
        return {
            "patient": patient, "days": days, "start": _iso(start_ns), "end": _iso(now_ns),
            "time_zone": own.time_zone,
            "bp": None if bp is None else {
                "unit": CATALOGUE["bp_systolic"].unit,
                "am": None if bp.am is None else _bp_out(bp.am), "pm": None if bp.pm is None else _bp_out(bp.pm),
                "all": _bp_out(bp.all)},
            "glucose": None if ranges is None else {
                "unit": "mg/dL", "n": len(mg_dl), "time_in_ranges": ranges,
                "agp": [{"minute": b.minute, "n": b.n, "p10": b.p10, "p25": b.p25, "p50": b.p50, "p75": b.p75,
                         "p90": b.p90} for b in ambulatory_glucose_profile(mg_dl, own.time_zone)]},
            "weight": None if change is None else {
                "unit": CATALOGUE["body_weight"].unit, "latest": change.latest, "time": _iso(change.latest_at_ns),
                "change_1d": change.change_1d, "change_3d": change.change_3d, "change_7d": change.change_7d},
            "news2": _news2_out(own_latest, sparks.get(patient, {}), own, now_ns, options.news2_max_age_s),
            "adherence": adhered,
            "latest": _latest_out(own_latest),
        }

    @router.get("/patients/{patient}/today", responses=ERROR_RESPONSES)
    async def today(
        patient: str,
        _principal: Annotated[Principal, Depends(require(Permission.READ_VITALS))],
    ) -> dict[str, Any]:
        """What the family sees: today's newest reading of each metric (local day) judged low, normal or high;
        whether the gateway and each device work; the measurements the care plan asks for today."""
        now = clock()
        now_ns = _ns(now)
        found = await _thread(settings_of, [patient])
        own = found[patient]
        local_now = now.astimezone(own.zone)
        midnight = dt.datetime.combine(local_now.date(), dt.time(0), own.zone)
        midnight_ns = _ns(midnight)
        plan_metrics = sorted({item.metric for item in own.care_plan})
        record, health, latest, minutes = await asyncio.gather(
            _thread(registry.patient, patient), _thread(_load_health, store, registry, [patient]),
            _influx(latest_values(influx, [patient], midnight_ns, now_ns)),
            _influx(reading_minutes(influx, patient, plan_metrics, midnight_ns, now_ns + _DAY_NS)))
        own_latest = latest.get(patient, {})
        return {
            "patient": patient, "display_name": record.display_name if record is not None else patient,
            "date": local_now.date().isoformat(), "time_zone": own.time_zone,
            "readings": [{"metric": metric, "value": value, "unit": CATALOGUE[metric].unit, "time": _iso(time_ns),
                          "status": reading_status(metric, value, own)}
                         for metric, (time_ns, value) in sorted(own_latest.items()) if metric in CATALOGUE],
            "gateway": _gateway_out(health.gateway_of(patient), now, options.gateway_silent_s),
            "devices": [_device_out(d, now_ns, options.device_silent_s) for d in health.devices_of(patient)],
            "due": [{"metric": window.metric, "window": window.label, "done": done,
                     "state": "done" if done else ("missed" if window.end_ns <= now_ns else
                                                   "open" if window.start_ns <= now_ns else "later")}
                    for window, done in due_on(own.care_plan, own.time_zone, local_now.date(), minutes)],
        }

    return router


def _bp_out(average: Any) -> dict[str, Any]:
    return {"systolic": average.systolic, "diastolic": average.diastolic, "n": average.n,
            "n_diastolic": average.n_diastolic}
