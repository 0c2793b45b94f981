"""Time below range (glucose): the share of a window a metric spent below a level."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cloud.rules._base import format_duration
from cloud.rules._config import MetricName, RuleConfig
from cloud.rules._episodes import Episode, EpisodeRule
from vitals.catalogue import get_metric
from vitals.samples import Sample

__all__ = ["TimeBelowRangeConfig", "TimeBelowRangeRule"]


class TimeBelowRangeConfig(RuleConfig):
    """Fires when ``metric`` spent more than ``max_percent`` of the covered time in ``window_s`` below ``low``.

    Each reading holds until the next, for at most ``max_gap_s`` (a gap in the data is not time
    below or in range). The share is judged once the readings cover ``min_coverage`` of the window.
    """

    type: Literal["time_below_range"] = "time_below_range"
    metric: MetricName = "blood_glucose"
    low: float
    max_percent: float = Field(gt=0, lt=100)
    window_s: float = Field(86_400.0, gt=0)
    max_gap_s: float = Field(900.0, gt=0)
    min_coverage: float = Field(0.7, gt=0, le=1)


class TimeBelowRangeRule(EpisodeRule):
    """See :class:`TimeBelowRangeConfig`. Memory: ``runs`` of held time ``[start, end, below]``, the last reading."""

    Config = TimeBelowRangeConfig
    lower_is_worse = False  # the worst is the largest share below

    def __init__(self, config: TimeBelowRangeConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metric = config.metric
        self.metrics = frozenset({config.metric})
        self.threshold = config.max_percent
        self.window_ns = int(config.window_s * 1e9)
        self.gap_ns = int(config.max_gap_s * 1e9)
        self.context_ns = self.window_ns
        self._unit = get_metric(config.metric).unit

    def own_memory(self, memory: dict[str, Any]) -> dict[str, Any]:
        """A copy of the runs (the last one is extended in place)."""
        return {**memory, "runs": [list(run) for run in memory.get("runs", [])]}

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool] | None:
        """The percentage of covered time below ``low`` in the window ending at this reading."""
        now = sample.time_ns
        runs: list[list[int]] = memory.get("runs", [])
        last = memory.get("last")
        if last is not None:
            start, below = last
            end = min(now, start + self.gap_ns)
            if end > start:
                if runs and runs[-1][1] == start and runs[-1][2] == below:
                    runs[-1][1] = end
                else:
                    runs.append([start, end, below])
        memory["last"] = [now, int(sample.value < self.c.low)]
        oldest = now - self.window_ns
        runs = [run for run in runs if run[1] > oldest]
        if runs and runs[0][0] < oldest:
            runs[0] = [oldest, runs[0][1], runs[0][2]]
        memory["runs"] = runs
        covered = sum(run[1] - run[0] for run in runs)
        if covered < self.c.min_coverage * self.window_ns:
            return None
        percent = 100.0 * sum(run[1] - run[0] for run in runs if run[2]) / covered
        return percent, percent > self.c.max_percent, percent <= self.c.max_percent

    def describe(self, episode: Episode) -> str:
        """``blood_glucose below 3.9 mmol/L more than 4 % of the last 1 d``."""
        return (f"{self.c.metric} below {self.c.low:g} {self._unit} more than {self.c.max_percent:g} % "
                f"of the last {format_duration(self.c.window_s)}")

    def worst_text(self, episode: Episode) -> str:
        """``up to 7.5 % of the time``."""
        return f"up to {episode.worst:.1f} % of the time"
