"""The episode machine most rules share: a condition that starts, holds for a while, fires and clears.

A rule reduces each sample it trusts to a judgement ``(value, beyond, cleared)``: the value it
reports (a reading, a mean, a score), whether the alert condition holds, and whether the clear
condition holds (they differ for hysteresis). Judgements are a step function: one holds until the
next, so a sparse stream is judged like a dense one. The episode fires once the condition has held
``for_ns`` (announced ``pending`` before, once, when ``for_ns`` > 0) and ends once the clear
condition has held ``clear_ns``. State is JSON: ``{"episode": {...} | None, "memory": {...}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cloud.rules._base import UNTRUSTED, AlertChange, RuleState, format_duration
from cloud.rules._config import ConfiguredRule, RuleConfig
from vitals.samples import Sample

__all__ = ["Episode", "EpisodeRule", "latest_per_episode"]


@dataclass
class Episode:
    """One episode of a rule's condition for one patient."""

    start_ns: int
    last_ns: int
    worst: float
    fired_ns: int | None = None
    recovery_start_ns: int | None = None
    announced: bool = False


class EpisodeRule(ConfiguredRule):
    """A rule whose alerts are episodes; subclasses define :meth:`judge` and :meth:`describe`."""

    metric: str
    """The metric alerts name."""
    threshold: float
    lower_is_worse: bool = False
    for_ns: int = 0
    clear_ns: int = 0
    skip_flags: int = UNTRUSTED

    def __init__(self, config: RuleConfig) -> None:
        super().__init__(config)

    # -- what a subclass defines ------------------------------------------------------------------
    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool] | None:
        """``(value, beyond, cleared)`` for ``sample`` (None: it changes nothing), updating ``memory``."""
        raise NotImplementedError

    def quiet_prefix(self, memory: dict[str, Any], samples: Sequence[Sample]) -> int:
        """How many leading samples change nothing but ``memory`` while no episode is open (absorbed here).

        A rule that can tell cheaply overrides this; the result must equal judging them one by one.
        """
        return 0

    def own_memory(self, memory: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``memory`` this call may change (the state handed in is never changed)."""
        return dict(memory)

    def describe(self, episode: Episode) -> str:
        """What the condition is, for alert text: ``"spo2 below 90 %"``."""
        raise NotImplementedError

    def details(self, episode: Episode, memory: dict[str, Any]) -> dict[str, Any]:
        """Rule-specific facts for the alert (JSON-able)."""
        return {}

    def severity_for(self, episode: Episode) -> str:
        """The severity of an alert for ``episode`` (the rule's own, unless a rule grades it)."""
        return self.severity

    def worst_text(self, episode: Episode) -> str:
        """The worst value, for alert text."""
        return f"worst {episode.worst:g}"

    # -- the machine --------------------------------------------------------------------------------
    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Advance ``state`` for ``patient`` with time-ordered samples; untrusted readings are skipped."""
        state = state or {}
        raw = state.get("episode")
        episode = Episode(**raw) if raw else None
        memory = self.own_memory(state.get("memory") or {})
        changes: list[AlertChange] = []
        metrics, skip, judge = self.metrics, self.skip_flags, self.judge
        if episode is None:
            samples = samples[self.quiet_prefix(memory, samples):]
        for sample in samples:
            if sample.metric not in metrics or sample.quality & skip:
                continue
            judged = judge(memory, sample)
            if judged is None or (episode is None and not judged[1]):
                continue  # nothing to judge, or all quiet: the common case, kept cheap
            episode = self._step(patient, episode, sample.time_ns, judged, memory, changes)
        if episode is not None and episode.fired_ns is None and not episode.announced and self.for_ns > 0:
            episode.announced = True
            changes.append(self._change(patient, episode, memory, "pending"))
        return ({"episode": None if episode is None else dict(episode.__dict__), "memory": memory},
                latest_per_episode(changes))

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Nothing happens on the clock alone: a judgement holds until the next one."""
        return dict(state or {"episode": None, "memory": {}}), []

    def _worse(self, a: float, b: float) -> float:
        return min(a, b) if self.lower_is_worse else max(a, b)

    def _step(self, patient: str, episode: Episode | None, now: int, judged: tuple[float, bool, bool],
              memory: dict[str, Any], changes: list[AlertChange]) -> Episode | None:
        value, beyond, cleared = judged
        # The previous judgement held until this one: a sparse stream can confirm an episode (or
        # its recovery) with the judgement that ends it.
        if episode is not None and episode.fired_ns is None and not beyond:
            if now - episode.start_ns < self.for_ns:
                if episode.announced:  # told as pending in an earlier call: say it never fired
                    changes.append(self._change(patient, episode, memory, "resolved", resolved_ns=now))
                return None
            self._fire(episode, now)
            changes.append(self._change(patient, episode, memory, "open"))
        elif (episode is not None and episode.recovery_start_ns is not None and not cleared
              and now - episode.recovery_start_ns >= self.clear_ns):
            changes.append(self._change(patient, episode, memory, "resolved", resolved_ns=now))
            episode = None
        if episode is None:
            if beyond:
                episode = Episode(start_ns=now, last_ns=now, worst=value)
                self._maybe_fire(patient, episode, memory, changes)
            return episode
        if episode.fired_ns is None:
            episode.last_ns, episode.worst = now, self._worse(episode.worst, value)
            self._maybe_fire(patient, episode, memory, changes)
            return episode
        if cleared:  # a fired episode ends only after a sustained recovery
            if episode.recovery_start_ns is None:
                episode.recovery_start_ns = now
            if now - episode.recovery_start_ns >= self.clear_ns:
                changes.append(self._change(patient, episode, memory, "resolved", resolved_ns=now))
                return None
            return episode
        episode.recovery_start_ns = None
        episode.last_ns = now
        episode.worst = self._worse(episode.worst, value) if beyond else episode.worst
        changes.append(self._change(patient, episode, memory, "open"))
        return episode

    @staticmethod
    def _fire(episode: Episode, now: int) -> None:
        episode.last_ns = episode.fired_ns = now
        episode.announced = False  # the same state whether or not it was announced in an earlier call

    def _maybe_fire(self, patient: str, episode: Episode, memory: dict[str, Any],
                    changes: list[AlertChange]) -> None:
        if episode.last_ns - episode.start_ns >= self.for_ns:
            if episode.fired_ns is None:
                self._fire(episode, episode.last_ns)
            changes.append(self._change(patient, episode, memory, "open"))

    def _change(self, patient: str, episode: Episode, memory: dict[str, Any],
                state: Literal["pending", "open", "resolved"], resolved_ns: int | None = None) -> AlertChange:
        details = self.details(episode, memory)
        what = self.describe(episode)
        if episode.fired_ns is None:
            fired_ns = episode.start_ns + self.for_ns
            if state == "pending":
                message = f"{what}: pending, alerts if it lasts {format_duration(self.for_ns / 1e9)}"
            else:
                details = {**details, "fired": False}
                held = format_duration(((resolved_ns or episode.last_ns) - episode.start_ns) / 1e9)
                message = f"{what}: ended after {held}, before {format_duration(self.for_ns / 1e9)}"
        else:
            fired_ns = episode.fired_ns
            held_s = (episode.last_ns - episode.start_ns) / 1e9
            message = f"{what} for {format_duration(held_s)} ({self.worst_text(episode)})"
        return AlertChange(
            rule=self.name, patient=patient, metric=self.metric, severity=self.severity_for(episode),
            episode_start_ns=episode.start_ns, fired_ns=fired_ns, last_ns=episode.last_ns,
            worst_value=episode.worst, threshold=self.threshold, message=message, state=state,
            resolved_ns=resolved_ns, details=details,
        )


def latest_per_episode(changes: list[AlertChange]) -> list[AlertChange]:
    """Many samples update the same episode; only its latest state needs storing."""
    if len(changes) < 2:
        return changes
    latest: dict[int, AlertChange] = {}
    for change in changes:
        latest[change.episode_start_ns] = change
    return list(latest.values())
