"""A threshold crossed and held for a minimum time: "SpO2 below 90 % for 60 s"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from cloud.rules._base import AlertChange, RuleState
from vitals.catalogue import get_metric
from vitals.samples import Quality, Sample

__all__ = ["SustainedThresholdRule", "format_duration"]

# Values flagged as artefacts, poor signal or filled in never drive an alert by themselves.
_UNTRUSTED = int(
    Quality.ARTIFACT | Quality.LOW_SIGNAL_QUALITY | Quality.INTERPOLATED | Quality.DEVICE_QUESTIONABLE
)


def format_duration(seconds: float) -> str:
    """A duration as people write it: ``45 s``, ``12 min``, ``1 h 49 min``, ``2 d 3 h``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass
class _Episode:
    start_ns: int
    last_ns: int
    worst: float
    fired_ns: int | None = None
    recovery_start_ns: int | None = None


class SustainedThresholdRule:
    """Fires when ``metric`` stays beyond ``threshold`` for at least ``duration_s``.

    ``direction`` is ``"below"`` or ``"above"``. Readings are a step function: a value holds until
    the next one, so a sparse (compressed) stream is judged like a dense one. The episode ends when
    the metric has been back past ``clear_threshold`` (hysteresis) for ``clear_s`` seconds; the
    next crossing opens a new episode. State: ``{"episode": {...} | None}``.
    """

    def __init__(
        self,
        name: str,
        metric: str,
        direction: Literal["below", "above"],
        threshold: float,
        duration_s: float,
        *,
        clear_threshold: float | None = None,
        clear_s: float = 60.0,
        severity: str = "high",
    ) -> None:
        get_metric(metric)  # unknown metrics fail at configuration time
        if direction not in ("below", "above"):
            raise ValueError(f"rule {name}: direction must be 'below' or 'above', not {direction!r}")
        if duration_s < 0 or clear_s < 0:
            raise ValueError(f"rule {name}: durations must not be negative")
        self.name = name
        self.metric = metric
        self.metrics = frozenset({metric})
        self.direction = direction
        self.threshold = threshold
        self.duration_ns = int(duration_s * 1e9)
        self.clear_threshold = threshold if clear_threshold is None else clear_threshold
        self.clear_ns = int(clear_s * 1e9)
        self.severity = severity
        # A late sample can start an episode that fires duration later, or end one clear_s later.
        self.context_ns = self.duration_ns + self.clear_ns
        self.ticks = False  # a reading holds until the next one: nothing happens on the clock alone

    def _beyond(self, value: float) -> bool:
        return value < self.threshold if self.direction == "below" else value > self.threshold

    def _cleared(self, value: float) -> bool:
        if self.direction == "below":
            return value >= self.clear_threshold
        return value <= self.clear_threshold

    def _worse(self, a: float, b: float) -> float:
        return min(a, b) if self.direction == "below" else max(a, b)

    def _change(self, patient: str, episode: _Episode, state: Literal["open", "resolved"],
                resolved_ns: int | None = None) -> AlertChange:
        assert episode.fired_ns is not None
        held_s = (episode.last_ns - episode.start_ns) / 1e9
        unit = get_metric(self.metric).unit
        message = (
            f"{self.metric} {self.direction} {self.threshold:g} {unit} for {format_duration(held_s)} "
            f"(worst {episode.worst:g} {unit})"
        )
        return AlertChange(
            rule=self.name, patient=patient, metric=self.metric, severity=self.severity,
            episode_start_ns=episode.start_ns, fired_ns=episode.fired_ns, last_ns=episode.last_ns,
            worst_value=episode.worst, threshold=self.threshold, message=message, state=state,
            resolved_ns=resolved_ns,
        )

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Advance ``state`` for ``patient`` with time-ordered samples; untrusted readings are skipped."""
        raw = (state or {}).get("episode")
        episode = _Episode(**raw) if raw else None
        changes: list[AlertChange] = []
        for sample in samples:
            if sample.metric != self.metric or sample.quality & _UNTRUSTED:
                continue
            episode = self._step(patient, episode, sample, changes)
        return {"episode": None if episode is None else asdict(episode)}, _latest_per_episode(changes)

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Nothing happens on the clock alone: a reading holds until the next one."""
        return dict(state or {"episode": None}), []

    def _step(self, patient: str, episode: _Episode | None, sample: Sample,
              changes: list[AlertChange]) -> _Episode | None:
        now, value = sample.time_ns, sample.value
        # Readings are a step function: the previous reading held until this one. So a sparse
        # stream can confirm an episode (or its recovery) with the reading that ends it.
        if episode is not None and episode.fired_ns is None and not self._beyond(value):
            if now - episode.start_ns < self.duration_ns:
                return None  # it did not last long enough: not an episode
            episode.last_ns = episode.fired_ns = now
            changes.append(self._change(patient, episode, "open"))
        elif (episode is not None and episode.recovery_start_ns is not None and not self._cleared(value)
              and now - episode.recovery_start_ns >= self.clear_ns):
            changes.append(self._change(patient, episode, "resolved", resolved_ns=now))
            episode = None
        if episode is None:
            if self._beyond(value):
                episode = _Episode(start_ns=now, last_ns=now, worst=value)
                self._maybe_fire(patient, episode, changes)
            return episode
        if episode.fired_ns is None:
            episode.last_ns, episode.worst = now, self._worse(episode.worst, value)
            self._maybe_fire(patient, episode, changes)
            return episode
        # A fired episode ends only after a sustained recovery.
        if self._cleared(value):
            if episode.recovery_start_ns is None:
                episode.recovery_start_ns = now
            if now - episode.recovery_start_ns >= self.clear_ns:
                changes.append(self._change(patient, episode, "resolved", resolved_ns=now))
                return None
            return episode
        episode.recovery_start_ns = None
        episode.last_ns = now
        episode.worst = self._worse(episode.worst, value) if self._beyond(value) else episode.worst
        changes.append(self._change(patient, episode, "open"))
        return episode

    def _maybe_fire(self, patient: str, episode: _Episode, changes: list[AlertChange]) -> None:
        if episode.last_ns - episode.start_ns >= self.duration_ns:
            if episode.fired_ns is None:
                episode.fired_ns = episode.last_ns
            changes.append(self._change(patient, episode, "open"))


def _latest_per_episode(changes: list[AlertChange]) -> list[AlertChange]:
    # Many samples update the same episode; only its latest state needs storing.
    latest: dict[int, AlertChange] = {}
    for change in changes:
        latest[change.episode_start_ns] = change
    return list(latest.values())
