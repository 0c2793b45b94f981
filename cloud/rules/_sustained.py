"""A threshold crossed and held for a minimum time, cleared past a second threshold: "SpO2 below 90 % for 60 s"."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Literal

from pydantic import Field, model_validator

from cloud.rules._base import AlertChange, RuleState, normalise_severity
from cloud.rules._config import MetricName, RuleConfig
from cloud.rules._episodes import Episode, EpisodeRule
from cloud.rules._settings import PatientSettings
from vitals.catalogue import get_metric
from vitals.samples import Sample

__all__ = ["SustainedThresholdConfig", "SustainedThresholdRule"]

_VALUE = itemgetter(2)  # Sample.value


class SustainedThresholdConfig(RuleConfig):
    """``metric`` beyond ``threshold`` for ``for_s`` fires; back past ``clear_threshold`` for ``clear_s`` clears.

    ``target: low|high`` takes the threshold from the patient's target range for the metric
    (``PatientSettings.targets``) when one is set; the clear threshold then moves with it.
    """

    type: Literal["sustained_threshold", "threshold"] = "sustained_threshold"
    metric: MetricName
    direction: Literal["below", "above"]
    threshold: float
    for_s: float = Field(0.0, ge=0, description="how long the condition must hold before it fires (s)")
    clear_threshold: float | None = None
    clear_s: float = Field(60.0, ge=0)
    target: Literal["low", "high"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_name(cls, data: Any) -> Any:
        # "duration_s" is what the first rules files called the for-delay.
        if isinstance(data, dict) and "duration_s" in data and "for_s" not in data:
            data = {("for_s" if key == "duration_s" else key): value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _hysteresis(self) -> SustainedThresholdConfig:
        clear = self.clear_threshold
        if clear is not None and ((self.direction == "below" and clear < self.threshold)
                                  or (self.direction == "above" and clear > self.threshold)):
            raise ValueError(f"clear_threshold {clear:g} must be on the normal side of threshold {self.threshold:g}")
        return self

    def for_settings(self, settings: PatientSettings) -> SustainedThresholdConfig:
        target = settings.targets.get(self.metric)
        bound = None if target is None or self.target is None else getattr(target, self.target)
        if bound is None or bound == self.threshold:
            return self
        shift = bound - self.threshold
        clear = None if self.clear_threshold is None else self.clear_threshold + shift
        return self.model_copy(update={"threshold": bound, "clear_threshold": clear})


class SustainedThresholdRule(EpisodeRule):
    """Fires when ``metric`` stays beyond ``threshold`` for at least ``duration_s``.

    ``direction`` is ``"below"`` or ``"above"``. Readings are a step function: a value holds until
    the next one, so a sparse (compressed) stream is judged like a dense one. The episode ends when
    the metric has been back past ``clear_threshold`` (hysteresis) for ``clear_s`` seconds; the
    next crossing opens a new episode.
    """

    Config = SustainedThresholdConfig

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
        severity: str = "urgent",
        config: SustainedThresholdConfig | None = None,
    ) -> None:
        get_metric(metric)  # unknown metrics fail at configuration time
        if direction not in ("below", "above"):
            raise ValueError(f"rule {name}: direction must be 'below' or 'above', not {direction!r}")
        if duration_s < 0 or clear_s < 0:
            raise ValueError(f"rule {name}: durations must not be negative")
        if config is None:
            config = SustainedThresholdConfig(
                name=name, metric=metric, direction=direction, threshold=threshold, for_s=duration_s,
                clear_threshold=clear_threshold, clear_s=clear_s, severity=normalise_severity(severity),
            )
        super().__init__(config)
        self.metric = metric
        self.metrics = frozenset({metric})
        self.direction = direction
        self.threshold = threshold
        self.lower_is_worse = direction == "below"
        self.duration_ns = self.for_ns = int(duration_s * 1e9)
        self.clear_threshold = threshold if clear_threshold is None else clear_threshold
        self.clear_ns = int(clear_s * 1e9)
        self._unit = get_metric(metric).unit
        # A late sample can start an episode that fires duration later, or end one clear_s later.
        self.context_ns = self.duration_ns + self.clear_ns
        self.ticks = False  # a reading holds until the next one: nothing happens on the clock alone

    @classmethod
    def from_config(cls, config: Any) -> SustainedThresholdRule:
        """Build the rule from its validated configuration."""
        c: SustainedThresholdConfig = config
        return cls(c.name, c.metric, c.direction, c.threshold, c.for_s, clear_threshold=c.clear_threshold,
                   clear_s=c.clear_s, severity=c.severity, config=c)

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """As :meth:`EpisodeRule.evaluate`, with a fast scan while no episode is open and nothing crosses."""
        if state is None or state.get("episode") is None:
            threshold, skip, metric, below = self.threshold, self.skip_flags, self.metric, self.lower_is_worse
            # All in C first: when no value at all crosses (other metrics' and untrusted ones included,
            # which can only make this say no), nothing does. NaN: min/max give NaN or ignore it; no is safe.
            if samples and ((min(map(_VALUE, samples)) >= threshold) if below
                            else (max(map(_VALUE, samples)) <= threshold)):
                return {"episode": None, "memory": {}}, []
            for sample in samples:
                if sample.quality & skip or sample.metric != metric:
                    continue
                if (sample.value < threshold) if below else (sample.value > threshold):
                    break
            else:
                return {"episode": None, "memory": {}}, []
        return super().evaluate(state, patient, samples)

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool]:
        """The reading itself, beyond the threshold or past the clear threshold."""
        value = sample.value
        if self.lower_is_worse:
            return value, value < self.threshold, value >= self.clear_threshold
        return value, value > self.threshold, value <= self.clear_threshold

    def describe(self, episode: Episode) -> str:
        """``spo2 below 90 %``."""
        return f"{self.metric} {self.direction} {self.threshold:g} {self._unit}"

    def worst_text(self, episode: Episode) -> str:
        """``worst 84 %``."""
        return f"worst {episode.worst:g} {self._unit}"
