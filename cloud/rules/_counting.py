"""Rules that count readings: ``k`` of the last ``n`` beyond a threshold, and a reading confirmed by a second."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloud.rules._base import UNTRUSTED, format_duration
from cloud.rules._config import MetricName, RuleConfig
from cloud.rules._episodes import Episode, EpisodeRule
from cloud.rules._settings import non_empty
from vitals.catalogue import get_metric
from vitals.samples import Quality, Sample

__all__ = ["ConfirmedConfig", "Crossing", "ConfirmedRule", "RepeatingConfig", "RepeatingRule"]

# A heartbeat repeats a value already counted: it is not a new reading.
_NOT_A_READING = UNTRUSTED | int(Quality.HEARTBEAT)


class RepeatingConfig(RuleConfig):
    """Fires when at least ``k`` of the last ``n`` readings (within ``within_s``) are beyond ``threshold``.

    Clears when at most ``clear_count`` of the last ``n`` are (0: the last ``n`` readings are all normal).
    """

    type: Literal["repeating"] = "repeating"
    metric: MetricName
    direction: Literal["below", "above"]
    threshold: float
    k: int = Field(ge=1)
    n: int = Field(ge=1, le=1000)
    within_s: float = Field(7 * 86_400.0, gt=0, description="readings older than this no longer count (s)")
    clear_count: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _counts(self) -> RepeatingConfig:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) cannot exceed n ({self.n})")
        if self.clear_count >= self.k:
            raise ValueError(f"clear_count ({self.clear_count}) must be below k ({self.k})")
        return self


class RepeatingRule(EpisodeRule):
    """``k`` of ``n`` readings beyond a threshold. Memory: the last ``n`` readings as ``[time, beyond]``."""

    Config = RepeatingConfig
    skip_flags = _NOT_A_READING

    def __init__(self, config: RepeatingConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metric = config.metric
        self.metrics = frozenset({config.metric})
        self.threshold = config.threshold
        self.lower_is_worse = config.direction == "below"
        self.within_ns = int(config.within_s * 1e9)
        self.context_ns = self.within_ns
        self._unit = get_metric(config.metric).unit

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool]:
        """The count of beyond readings among the last ``n``."""
        value = sample.value
        beyond = value < self.threshold if self.lower_is_worse else value > self.threshold
        recent: list[list[int]] = memory.get("recent", [])
        oldest = sample.time_ns - self.within_ns
        recent = [entry for entry in recent if entry[0] > oldest][-(self.c.n - 1):] if self.c.n > 1 else []
        recent.append([sample.time_ns, int(beyond)])
        memory["recent"] = recent
        count = sum(entry[1] for entry in recent)
        return value, count >= self.c.k, count <= self.c.clear_count

    def describe(self, episode: Episode) -> str:
        """``bp_systolic above 160 mm[Hg] in 3 of 5 readings``."""
        c = self.c
        return f"{c.metric} {c.direction} {c.threshold:g} {self._unit} in {c.k} of {c.n} readings"

    def worst_text(self, episode: Episode) -> str:
        """``worst 172 mm[Hg]``."""
        return f"worst {episode.worst:g} {self._unit}"

    def details(self, episode: Episode, memory: dict[str, Any]) -> dict[str, Any]:
        """How many of the recent readings were beyond."""
        recent = memory.get("recent", [])
        return {"beyond": sum(entry[1] for entry in recent), "readings": len(recent)}


class Crossing(BaseModel):
    """One metric's crisis level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: MetricName
    direction: Literal["below", "above"]
    threshold: float


class ConfirmedConfig(RuleConfig):
    """A reading beyond any of ``crossings`` confirmed by another such reading within ``confirm_s``.

    One reading never fires (a cuff misplaced, a finger moved); the second, taken later but within
    ``confirm_s``, does. Readings at the same instant are one measurement (systolic and diastolic).
    Clears at a reading past none of the crossings once ``confirm_s`` has passed since the last one.
    """

    type: Literal["confirmed"] = "confirmed"
    crossings: tuple[Crossing, ...]
    confirm_s: float = Field(1800.0, gt=0)

    _some = field_validator("crossings")(classmethod(lambda cls, value: non_empty(value)))


class ConfirmedRule(EpisodeRule):
    """See :class:`ConfirmedConfig`. Memory: the time of the last crossing reading."""

    Config = ConfirmedConfig
    skip_flags = _NOT_A_READING

    def __init__(self, config: ConfirmedConfig) -> None:
        super().__init__(config)
        self.c = config
        first = config.crossings[0]
        self.metric = first.metric
        self.metrics = frozenset(crossing.metric for crossing in config.crossings)
        self.threshold = first.threshold
        self.lower_is_worse = first.direction == "below"
        self.confirm_ns = int(config.confirm_s * 1e9)
        self.context_ns = 2 * self.confirm_ns
        self._by_metric = {crossing.metric: crossing for crossing in config.crossings}

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool]:
        """Beyond when this reading crosses and an earlier one crossed within the window."""
        crossing = self._by_metric[sample.metric]
        value, now = sample.value, sample.time_ns
        crosses = value < crossing.threshold if crossing.direction == "below" else value > crossing.threshold
        last, previous = memory.get("last_cross"), memory.get("previous_cross")
        if crosses:
            if last is None or now > last:  # a new measurement (same instant: systolic and diastolic)
                previous, last = last, now
                memory["previous_cross"], memory["last_cross"] = previous, last
            confirmed = previous is not None and now - previous <= self.confirm_ns
            return value, confirmed, False
        cleared = last is None or now - last >= self.confirm_ns
        return value, False, cleared

    def describe(self, episode: Episode) -> str:
        """``bp_systolic above 180 or bp_diastolic above 120, confirmed within 30 min``."""
        parts = " or ".join(f"{c.metric} {c.direction} {c.threshold:g}" for c in self.c.crossings)
        return f"{parts}, confirmed by a second reading within {format_duration(self.c.confirm_s)}"

    def worst_text(self, episode: Episode) -> str:
        """``worst 196``."""
        return f"worst {episode.worst:g}"
