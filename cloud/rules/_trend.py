"""Trend rules: a change over a window ("weight up 2 kg in 3 days"), and a departure from the patient's own baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from cloud.rules._base import format_duration
from cloud.rules._config import MetricName, RuleConfig
from cloud.rules._episodes import Episode, EpisodeRule
from vitals.catalogue import get_metric
from vitals.samples import Sample

__all__ = ["BaselineConfig", "BaselineRule", "TrendConfig", "TrendRule"]

_POINTS = 256  # a window keeps at most this many points (one per window/256): bounded state for dense streams


class TrendConfig(RuleConfig):
    """``metric`` rising (or falling) by more than ``change`` within ``window_s``.

    ``method: change`` compares each reading with the lowest (rising) or highest (falling) reading
    of the window; ``method: slope`` fits a least-squares line through the window and compares its
    change per day with ``change`` (once ``min_points`` readings are in). Clears at or below
    ``clear_change`` (defaults to ``change``).
    """

    type: Literal["trend"] = "trend"
    metric: MetricName
    direction: Literal["rise", "fall"] = "rise"
    change: float = Field(gt=0, description="in the metric's unit (per day for method slope)")
    window_s: float = Field(gt=0)
    method: Literal["change", "slope"] = "change"
    min_points: int = Field(3, ge=2)
    clear_change: float | None = None


class TrendRule(EpisodeRule):
    """See :class:`TrendConfig`. Memory: ``points`` as ``[time, value]``, at most one per 1/256 of the window."""

    Config = TrendConfig

    def __init__(self, config: TrendConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metric = config.metric
        self.metrics = frozenset({config.metric})
        self.threshold = config.change
        self.window_ns = int(config.window_s * 1e9)
        self.bucket_ns = max(1, self.window_ns // _POINTS)
        self.context_ns = self.window_ns
        self.sign = 1.0 if config.direction == "rise" else -1.0
        self.clear = config.change if config.clear_change is None else config.clear_change
        self._unit = get_metric(config.metric).unit

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool] | None:
        """The change (in the metric's unit, or per day for slope) in the rule's direction."""
        now, value = sample.time_ns, sample.value
        oldest = now - self.window_ns
        points: list[list[float]] = [p for p in memory.get("points", []) if p[0] >= oldest]
        if self.c.method == "change":
            # Against the lowest reading of the window for a rise, the highest for a fall.
            reference = (min if self.sign > 0 else max)(p[1] for p in points) if points else value
            change, enough = self.sign * (value - reference), bool(points)
        else:
            change, enough = self._slope([*points, [now, value]])
        # Keep one point per bucket: for "change" the one furthest against the direction (the reference).
        if points and now // self.bucket_ns == int(points[-1][0]) // self.bucket_ns:
            if self.c.method == "slope" or self.sign * value < self.sign * points[-1][1]:
                points[-1] = [now, value]
        else:
            points.append([now, value])
        memory["points"] = points
        if not enough:
            return None
        return change, change > self.c.change, change <= self.clear

    def _slope(self, points: list[list[float]]) -> tuple[float, bool]:
        if len(points) < self.c.min_points:
            return 0.0, False
        t0 = points[0][0]
        xs = [(p[0] - t0) / 86_400e9 for p in points]
        ys = [p[1] for p in points]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        if spread == 0:
            return 0.0, False
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
        return self.sign * slope, True

    def describe(self, episode: Episode) -> str:
        """``body_weight up more than 2 kg within 3 d``."""
        way = "up" if self.sign > 0 else "down"
        per = "/d (trend)" if self.c.method == "slope" else ""
        return (f"{self.c.metric} {way} more than {self.c.change:g} {self._unit}{per} "
                f"within {format_duration(self.c.window_s)}")

    def worst_text(self, episode: Episode) -> str:
        """``largest change 2.6 kg``."""
        return f"largest change {episode.worst:.3g} {self._unit}"


class BaselineConfig(RuleConfig):
    """``metric`` departing from the patient's own baseline, learnt from their history.

    Readings are averaged per ``period_s`` (e.g. hourly); each finished period is compared with an
    exponentially weighted mean and spread of the earlier periods (``half_life_periods``). The
    rule fires when a period mean lies more than ``z`` spreads and at least ``min_deviation`` (the
    metric's unit) beyond the baseline, and never before ``warmup_periods`` periods have been
    learnt. Periods that deviate do not teach the baseline (a deterioration is not the new normal).
    """

    type: Literal["baseline"] = "baseline"
    metric: MetricName
    direction: Literal["above", "below"] = "above"
    z: float = Field(3.0, gt=0)
    min_deviation: float = Field(0.0, ge=0)
    period_s: float = Field(3600.0, gt=0)
    half_life_periods: float = Field(24.0 * 7, gt=0)
    warmup_periods: int = Field(72, ge=2)
    min_samples: int = Field(1, ge=1, description="readings a period needs to count")
    for_s: float = Field(0.0, ge=0)


class BaselineRule(EpisodeRule):
    """See :class:`BaselineConfig`. Memory: the open period's sum and count, the baseline mean, variance, count."""

    Config = BaselineConfig

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metric = config.metric
        self.metrics = frozenset({config.metric})
        self.threshold = config.z
        self.period_ns = int(config.period_s * 1e9)
        self.for_ns = int(config.for_s * 1e9)
        self.context_ns = self.period_ns * 2 + self.for_ns
        self.alpha = 1.0 - 0.5 ** (1.0 / config.half_life_periods)
        self.sign = 1.0 if config.direction == "above" else -1.0
        self._unit = get_metric(config.metric).unit

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool] | None:
        """At the first reading of a new period: the finished period's deviation in spreads."""
        period = sample.time_ns // self.period_ns
        current = memory.get("period")
        if current == period:
            memory["sum"] += sample.value
            memory["count"] += 1
            return None
        judged = None
        if current is not None and memory["count"] >= self.c.min_samples:
            judged = self._close(memory, memory["sum"] / memory["count"])
        memory["period"], memory["sum"], memory["count"] = period, sample.value, 1
        return judged

    def quiet_prefix(self, memory: dict[str, Any], samples: Sequence[Sample]) -> int:
        """Readings in the open period only add to its sum (in the same order as judging them one by one)."""
        current = memory.get("period")
        if current is None:
            return 0
        period_ns, skip, metric = self.period_ns, self.skip_flags, self.metric
        total, count = memory["sum"], memory["count"]
        index = 0
        for index, sample in enumerate(samples):  # noqa: B007 (the index is the answer)
            if sample.quality & skip or sample.metric != metric:
                continue
            if sample.time_ns // period_ns != current:
                break
            total += sample.value
            count += 1
        else:
            index = len(samples)
        memory["sum"], memory["count"] = total, count
        return index

    def _close(self, memory: dict[str, Any], value: float) -> tuple[float, bool, bool] | None:
        learnt = memory.get("learnt", 0)
        mean, variance = memory.get("mean", value), memory.get("variance", 0.0)
        deviation = self.sign * (value - mean)
        spread = math.sqrt(variance)
        beyond = (learnt >= self.c.warmup_periods and deviation > self.c.z * spread
                  and deviation >= self.c.min_deviation and deviation > 0)
        if not beyond:  # learn only from periods that look like the patient's normal
            if learnt == 0:
                mean, variance = value, 0.0
            else:
                delta = value - mean
                mean += self.alpha * delta
                variance = (1 - self.alpha) * (variance + self.alpha * delta * delta)
            memory["mean"], memory["variance"], memory["learnt"] = mean, variance, learnt + 1
        memory["last_mean"] = value
        if learnt < self.c.warmup_periods:
            return None
        score = deviation / spread if spread > 0 else (math.inf if deviation > 0 else 0.0)
        score = min(score, 1e6)
        return score, beyond, not beyond

    def describe(self, episode: Episode) -> str:
        """``heart_rate above the patient's baseline by more than 3 SD``."""
        return (f"{self.c.metric} {self.c.direction} the patient's baseline by more than {self.c.z:g} SD "
                f"(period means over {format_duration(self.c.period_s)})")

    def worst_text(self, episode: Episode) -> str:
        """``up to 4.2 SD``."""
        return f"up to {episode.worst:.1f} SD"

    def details(self, episode: Episode, memory: dict[str, Any]) -> dict[str, Any]:
        """The baseline and the latest period mean, in the metric's unit."""
        spread = math.sqrt(memory.get("variance", 0.0))
        return {"baseline": round(memory.get("mean", 0.0), 2), "spread": round(spread, 2),
                "period_mean": round(memory.get("last_mean", 0.0), 2), "unit": self._unit}
