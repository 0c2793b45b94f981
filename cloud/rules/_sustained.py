"""A threshold crossed and held for a minimum time: "SpO2 below 90 % for 60 s"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cloud.rules._base import AlertChange
from vitals.catalogue import get_metric
from vitals.samples import Quality, Sample

__all__ = ["SustainedThresholdRule"]

# Values flagged as artefacts, poor signal or filled in never drive an alert by themselves.
_UNTRUSTED = (
    Quality.ARTIFACT | Quality.LOW_SIGNAL_QUALITY | Quality.INTERPOLATED | Quality.DEVICE_QUESTIONABLE
)


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
    next crossing opens a new episode.
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
        self._episodes: dict[str, _Episode] = {}
        self._last_seen: dict[str, int] = {}

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
            f"{self.metric} {self.direction} {self.threshold:g} {unit} for {held_s:.0f} s "
            f"(worst {episode.worst:g} {unit})"
        )
        return AlertChange(
            rule=self.name, patient=patient, metric=self.metric, severity=self.severity,
            episode_start_ns=episode.start_ns, fired_ns=episode.fired_ns, last_ns=episode.last_ns,
            worst_value=episode.worst, threshold=self.threshold, message=message, state=state,
            resolved_ns=resolved_ns,
        )

    def evaluate(self, patient: str, samples: Sequence[Sample]) -> list[AlertChange]:
        """Advance the state for ``patient``; samples older than ones already seen are ignored."""
        changes: list[AlertChange] = []
        last_seen = self._last_seen.get(patient, -1)
        for sample in samples:
            if sample.metric != self.metric or sample.time_ns <= last_seen:
                continue
            if sample.quality & _UNTRUSTED:
                continue
            last_seen = sample.time_ns
            changes.extend(self._step(patient, sample))
        self._last_seen[patient] = last_seen
        return _latest_per_episode(changes)

    def _step(self, patient: str, sample: Sample) -> list[AlertChange]:
        now, value = sample.time_ns, sample.value
        changes: list[AlertChange] = []
        episode = self._episodes.get(patient)
        # Readings are a step function: the previous reading held until this one. So a sparse
        # stream can confirm an episode (or its recovery) with the reading that ends it.
        if episode is not None and episode.fired_ns is None and not self._beyond(value):
            if now - episode.start_ns < self.duration_ns:
                del self._episodes[patient]  # it did not last long enough: not an episode
                return changes
            episode.last_ns = episode.fired_ns = now
            changes.append(self._change(patient, episode, "open"))
        elif (episode is not None and episode.recovery_start_ns is not None and not self._cleared(value)
              and now - episode.recovery_start_ns >= self.clear_ns):
            del self._episodes[patient]
            changes.append(self._change(patient, episode, "resolved", resolved_ns=now))
            episode = None
        if episode is None:
            if self._beyond(value):
                episode = _Episode(start_ns=now, last_ns=now, worst=value)
                self._episodes[patient] = episode
                changes.extend(self._maybe_fire(patient, episode))
            return changes
        if episode.fired_ns is None:
            episode.last_ns, episode.worst = now, self._worse(episode.worst, value)
            changes.extend(self._maybe_fire(patient, episode))
            return changes
        # A fired episode ends only after a sustained recovery.
        if self._cleared(value):
            if episode.recovery_start_ns is None:
                episode.recovery_start_ns = now
            if now - episode.recovery_start_ns >= self.clear_ns:
                del self._episodes[patient]
                changes.append(self._change(patient, episode, "resolved", resolved_ns=now))
            return changes
        episode.recovery_start_ns = None
        episode.last_ns = now
        episode.worst = self._worse(episode.worst, value) if self._beyond(value) else episode.worst
        changes.append(self._change(patient, episode, "open"))
        return changes

    def _maybe_fire(self, patient: str, episode: _Episode) -> list[AlertChange]:
        if episode.last_ns - episode.start_ns >= self.duration_ns:
            if episode.fired_ns is None:
                episode.fired_ns = episode.last_ns
            return [self._change(patient, episode, "open")]
        return []


def _latest_per_episode(changes: list[AlertChange]) -> list[AlertChange]:
    # Many samples update the same episode; only its latest state needs storing.
    latest: dict[int, AlertChange] = {}
    for change in changes:
        latest[change.episode_start_ns] = change
    return list(latest.values())
