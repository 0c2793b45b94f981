"""Home blood pressure by protocol: the mean of morning and evening readings over several days.

Home BP is judged on averages, not single readings: readings taken in the morning and evening
windows (the patient's local time) over the last ``days`` are averaged, and the rule fires when
the mean systolic or mean diastolic is at or above its limit, once enough readings are in.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cloud.rules._base import UNTRUSTED
from cloud.rules._config import RuleConfig
from cloud.rules._episodes import Episode, EpisodeRule
from cloud.rules._settings import PatientSettings, TimeWindow, local_minutes
from vitals.samples import Quality, Sample

__all__ = ["ProtocolAverageConfig", "ProtocolAverageRule"]


class ProtocolAverageConfig(RuleConfig):
    """Mean home BP over ``days`` from readings in ``windows`` (local time) against ``systolic``/``diastolic``."""

    type: Literal["bp_average"] = "bp_average"
    systolic: float = Field(135.0, gt=0, description="fires when the mean systolic is at or above this (mmHg)")
    diastolic: float = Field(85.0, gt=0, description="fires when the mean diastolic is at or above this (mmHg)")
    days: float = Field(7.0, gt=0, le=31)
    min_readings: int = Field(12, ge=1, description="systolic readings needed before the mean is judged")
    windows: tuple[TimeWindow, ...] = (TimeWindow(start="04:00", end="12:00"), TimeWindow(start="16:00", end="24:00"))
    time_zone: str = "UTC"

    def for_settings(self, settings: PatientSettings) -> ProtocolAverageConfig:
        if settings.time_zone == self.time_zone:
            return self
        return self.model_copy(update={"time_zone": settings.time_zone})


_SYSTOLIC, _DIASTOLIC = "bp_systolic", "bp_diastolic"


class ProtocolAverageRule(EpisodeRule):
    """See :class:`ProtocolAverageConfig`. Memory: ``readings`` as ``[time, 0 systolic | 1 diastolic, value]``."""

    Config = ProtocolAverageConfig
    skip_flags = UNTRUSTED | int(Quality.HEARTBEAT)

    def __init__(self, config: ProtocolAverageConfig) -> None:
        super().__init__(config)
        self.c = config
        self.metric = _SYSTOLIC
        self.metrics = frozenset({_SYSTOLIC, _DIASTOLIC})
        self.threshold = config.systolic
        self.span_ns = int(config.days * 86_400e9)
        self.context_ns = self.span_ns
        self._windows = [window.minutes for window in config.windows]

    def _in_protocol(self, time_ns: int) -> bool:
        _date, minutes = local_minutes(time_ns, self.c.time_zone)
        return any(start <= minutes < end for start, end in self._windows)

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool] | None:
        """The mean systolic (value) and whether either mean is at or above its limit."""
        if not self._in_protocol(sample.time_ns):
            return None
        oldest = sample.time_ns - self.span_ns
        readings = [r for r in memory.get("readings", []) if r[0] > oldest]
        readings.append([sample.time_ns, 0 if sample.metric == _SYSTOLIC else 1, sample.value])
        memory["readings"] = readings
        systolic = [r[2] for r in readings if r[1] == 0]
        diastolic = [r[2] for r in readings if r[1] == 1]
        if len(systolic) < self.c.min_readings:
            return None
        mean_sys = sum(systolic) / len(systolic)
        mean_dia = sum(diastolic) / len(diastolic) if diastolic else 0.0
        memory["mean"] = [round(mean_sys, 1), round(mean_dia, 1), len(systolic)]
        high = mean_sys >= self.c.systolic or mean_dia >= self.c.diastolic
        return mean_sys, high, not high

    def describe(self, episode: Episode) -> str:
        """``home BP mean over 7 d at or above 135/85 mm[Hg]``."""
        return f"home BP mean over {self.c.days:g} d at or above {self.c.systolic:g}/{self.c.diastolic:g} mm[Hg]"

    def worst_text(self, episode: Episode) -> str:
        """``highest mean systolic 142``."""
        return f"highest mean systolic {episode.worst:.0f} mm[Hg]"

    def details(self, episode: Episode, memory: dict[str, Any]) -> dict[str, Any]:
        """The current means and how many systolic readings they average."""
        mean = memory.get("mean")
        if not mean:
            return {}
        return {"mean_systolic": mean[0], "mean_diastolic": mean[1], "readings": mean[2]}
