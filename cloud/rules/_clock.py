"""Rules the clock moves: a metric silent too long, a scheduled measurement missed, a gateway offline.

They are ticked (``ticks = True``) with the current time and judge what did *not* happen; samples
only record that data arrived (and end an episode). Each episode starts at a time derived from the
data (the last reading, the end of the missed window, the gateway's offline time), so ticking
twice, or after a restart, names the same episode.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from cloud.rules._base import AlertChange, RuleState, format_duration
from cloud.rules._config import ConfiguredRule, MetricName, RuleConfig
from cloud.rules._facts import PatientFacts
from cloud.rules._settings import PatientSettings, TimeWindow, local_minutes, non_empty
from vitals.samples import Sample

__all__ = [
    "GatewayOfflineConfig",
    "GatewayOfflineRule",
    "MissedMeasurementConfig",
    "MissedMeasurementRule",
    "NoDataConfig",
    "NoDataRule",
]


def _change(rule: ConfiguredRule, patient: str, metric: str, start_ns: int, fired_ns: int, last_ns: int,
            value: float, threshold: float, message: str, state: Literal["open", "resolved"],
            resolved_ns: int | None = None, details: dict[str, Any] | None = None) -> AlertChange:
    return AlertChange(rule=rule.name, patient=patient, metric=metric, severity=rule.severity,
                       episode_start_ns=start_ns, fired_ns=fired_ns, last_ns=last_ns, worst_value=value,
                       threshold=threshold, message=message, state=state, resolved_ns=resolved_ns,
                       details=details or {})


class NoDataConfig(RuleConfig):
    """Fires when none of ``metrics`` has arrived for longer than ``max_silence_s`` (a heartbeat counts)."""

    type: Literal["no_data"] = "no_data"
    metrics: tuple[MetricName, ...]
    max_silence_s: float = Field(gt=0)

    _some = field_validator("metrics")(classmethod(lambda cls, value: non_empty(value)))


class NoDataRule(ConfiguredRule):
    """See :class:`NoDataConfig`. State: ``{"last": ns | None, "open": episode start ns | None}``."""

    Config = NoDataConfig
    ticks = True
    reevaluates = False

    def __init__(self, config: NoDataConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metrics = frozenset(config.metrics)
        self.metric = config.metrics[0]
        self.silence_ns = int(config.max_silence_s * 1e9)
        self.context_ns = 0

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Data arrived: remember when; a silence that was open ends at the first new reading."""
        state = dict(state or {"last": None, "open": None})
        metrics = self.metrics
        if samples and samples[0].metric in metrics and samples[-1].metric in metrics:
            first, last = samples[0].time_ns, samples[-1].time_ns  # the usual case: only its metrics
        else:
            ours = [sample.time_ns for sample in samples if sample.metric in metrics]
            if not ours:
                return state, []
            first, last = ours[0], ours[-1]
        changes: list[AlertChange] = []
        opened = state.get("open")
        if opened is not None:
            changes.append(self._change(patient, opened, first, "resolved", resolved_ns=first))
            state["open"] = None
        state["last"] = max(last, state.get("last") or last)
        return state, changes

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Open a silence once ``now_ns`` is more than the allowed silence after the last reading."""
        state = dict(state or {"last": None, "open": None})
        last = state.get("last")
        if last is None or state.get("open") is not None or now_ns - last <= self.silence_ns:
            return state, []
        state["open"] = last
        return state, [self._change(patient, last, now_ns, "open")]

    def _change(self, patient: str, last: int, now_ns: int, state: Literal["open", "resolved"],
                resolved_ns: int | None = None) -> AlertChange:
        silent_s = (now_ns - last) / 1e9
        names = ", ".join(self.c.metrics)
        if state == "open":
            message = (f"no {names} for {format_duration(silent_s)} "
                       f"(allowed {format_duration(self.c.max_silence_s)})")
        else:
            message = f"{names} back after {format_duration(silent_s)} without data"
        return _change(self, patient, self.metric, last, last + self.silence_ns, now_ns, silent_s,
                       self.c.max_silence_s, message, state, resolved_ns, {"silent_s": round(silent_s)})


class MissedMeasurementConfig(RuleConfig):
    """Fires when a measurement of ``metric`` expected in one of ``windows`` (local time) did not come.

    The windows come from the patient's care plan when it lists ``metric``; the time zone from their
    settings. The alert counts missed windows until a reading arrives, which resolves it. Windows
    are judged ``grace_s`` after they close, and only windows that close after the rule first saw
    the patient's data.
    """

    type: Literal["missed_measurement"] = "missed_measurement"
    metric: MetricName
    windows: tuple[TimeWindow, ...]
    grace_s: float = Field(0.0, ge=0)
    time_zone: str = "UTC"

    _some = field_validator("windows")(classmethod(lambda cls, value: non_empty(value)))

    def for_settings(self, settings: PatientSettings) -> MissedMeasurementConfig:
        planned = next((item.windows for item in settings.care_plan if item.metric == self.metric), None)
        update: dict[str, Any] = {}
        if settings.time_zone != self.time_zone:
            update["time_zone"] = settings.time_zone
        if planned is not None and planned != self.windows:
            update["windows"] = planned
        return self.model_copy(update=update) if update else self


class MissedMeasurementRule(ConfiguredRule):
    """See :class:`MissedMeasurementConfig`.

    State: ``checked`` (windows closing up to this ns are judged), ``hits`` (start ns of windows
    that had a reading, not yet judged), ``open`` (episode start ns) and ``missed`` (count).
    """

    Config = MissedMeasurementConfig
    ticks = True
    reevaluates = False

    def __init__(self, config: MissedMeasurementConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metric = config.metric
        self.metrics = frozenset({config.metric})
        self.grace_ns = int(config.grace_s * 1e9)
        self.context_ns = 0
        self.zone = zoneinfo.ZoneInfo(config.time_zone)
        self._windows = [window.minutes for window in config.windows]

    def _at(self, day: dt.date, minutes: int) -> int:
        # Aware datetime + timedelta is wall-clock arithmetic: 06:00 stays 06:00 local across a DST change.
        moment = dt.datetime.combine(day, dt.time(0), tzinfo=self.zone) + dt.timedelta(minutes=minutes)
        return int(moment.timestamp()) * 10**9

    def _window_start(self, time_ns: int) -> int | None:
        day, minutes = local_minutes(time_ns, self.c.time_zone)
        for start, end in self._windows:
            if start <= minutes < end:
                return self._at(day, start)
        return None

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Record which windows had a reading; a reading ends an open alert."""
        state = dict(state or {})
        ours = [sample.time_ns for sample in samples if sample.metric == self.metric]
        if not ours:
            return state, []
        state.setdefault("checked", ours[0])
        hits = set(state.get("hits", []))
        for time_ns in ours:
            start = self._window_start(time_ns)
            if start is not None:
                hits.add(start)
        state["hits"] = sorted(hits)
        changes: list[AlertChange] = []
        opened = state.get("open")
        if opened is not None:
            changes.append(self._change(patient, opened, ours[0], state.get("missed", 1), "resolved",
                                        resolved_ns=ours[0]))
            state["open"], state["missed"] = None, 0
        return state, changes

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Judge every window that closed (plus grace) since the last tick."""
        state = dict(state or {})
        checked = state.get("checked")
        if checked is None:
            return state, []  # never saw this patient's data: nothing is expected yet
        horizon = now_ns - self.grace_ns
        if horizon <= checked:
            return state, []
        hits = set(state.get("hits", []))
        missed: list[int] = []
        day = local_minutes(checked, self.c.time_zone)[0] - dt.timedelta(days=1)
        last_day = local_minutes(horizon, self.c.time_zone)[0]
        while day <= last_day:
            for start, end in self._windows:
                window_start, window_end = self._at(day, start), self._at(day, end)
                if checked < window_end <= horizon and window_start not in hits:
                    missed.append(window_end)
            day += dt.timedelta(days=1)
        state["checked"] = horizon
        state["hits"] = sorted(hit for hit in hits if hit >= horizon - 2 * 86_400 * 10**9)
        if not missed:
            return state, []
        count = int(state.get("missed") or 0) + len(missed)
        opened = state.get("open")
        if opened is None:
            opened = state["open"] = min(missed)
        state["missed"] = count
        return state, [self._change(patient, opened, now_ns, count, "open")]

    def _change(self, patient: str, start_ns: int, now_ns: int, count: int, state: Literal["open", "resolved"],
                resolved_ns: int | None = None) -> AlertChange:
        windows = ", ".join(f"{w.start}-{w.end}" for w in self.c.windows)
        if state == "open":
            message = (f"{self.metric}: {count} scheduled measurement{'s' if count > 1 else ''} missed "
                       f"(expected {windows} {self.c.time_zone})")
        else:
            message = f"{self.metric} measured again after {count} missed"
        return _change(self, patient, self.metric, start_ns, start_ns, now_ns, float(count), 1.0, message, state,
                       resolved_ns, {"missed": count})


class GatewayOfflineConfig(RuleConfig):
    """Fires when the patient's gateway has been offline for at least ``offline_s`` (from :class:`PatientFacts`)."""

    type: Literal["gateway_offline"] = "gateway_offline"
    offline_s: float = Field(900.0, ge=0)


class GatewayOfflineRule(ConfiguredRule):
    """See :class:`GatewayOfflineConfig`. Judges facts only; ``metrics`` is empty. State: ``{"open": ns | None}``."""

    Config = GatewayOfflineConfig
    ticks = True
    reevaluates = False
    uses_facts = True

    def __init__(self, config: GatewayOfflineConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metrics = frozenset()
        self.context_ns = 0
        self.offline_ns = int(config.offline_s * 1e9)

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Samples change nothing (the gateway's status messages do)."""
        return dict(state or {"open": None}), []

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Without facts nothing is known: nothing changes."""
        return self.tick_facts(state, patient, now_ns, None)

    def tick_facts(self, state: RuleState | None, patient: str, now_ns: int,
                   facts: PatientFacts | None) -> tuple[RuleState, list[AlertChange]]:
        """Open when offline long enough; resolve when the gateway is back online."""
        state = dict(state or {"open": None})
        if facts is None or facts.gateway_status == "unknown":
            return state, []
        opened = state.get("open")
        name = facts.gateway or "the gateway"
        if facts.gateway_status == "online":
            if opened is None:
                return state, []
            state["open"] = None
            back = facts.status_since_ns if facts.status_since_ns is not None else now_ns
            back = max(back, opened)  # an "online since" older than the outage (a stale fact) ends it as it began
            return state, [_change(self, patient, "gateway", opened, opened + self.offline_ns, back,
                                   (back - opened) / 1e9, self.c.offline_s,
                                   f"{name} back online after {format_duration((back - opened) / 1e9)}",
                                   "resolved", back, {"gateway": facts.gateway})]
        since = facts.status_since_ns if facts.status_since_ns is not None else now_ns
        if opened is not None or now_ns - since < self.offline_ns:
            return state, []
        state["open"] = since
        offline_s = (now_ns - since) / 1e9
        return state, [_change(self, patient, "gateway", since, now_ns, now_ns, offline_s, self.c.offline_s,
                               f"{name} offline for {format_duration(offline_s)}", "open", None,
                               {"gateway": facts.gateway})]

