"""The ``news2`` rule: alerts when a patient's NEWS2 reaches a response band."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from cloud.rules._base import Severity, format_duration
from cloud.rules._config import RuleConfig
from cloud.rules._episodes import Episode, EpisodeRule
from cloud.rules._settings import PatientSettings
from cloud.rules.news2 import (
    BAND_ORDER,
    NEWS2_PARAMETERS,
    news2_band,
    pulse_score,
    respiration_rate_score,
    spo2_scale1_score,
    spo2_scale2_score,
    systolic_score,
    temperature_score,
)
from vitals.samples import Sample

__all__ = ["News2Config", "News2Rule"]

# Catalogue metric -> NEWS2 parameter. Pulse comes from the oximeter or the ECG, whichever is newer.
_PARAMETER = {
    "respiratory_rate": "respiration_rate", "spo2": "spo2", "bp_systolic": "systolic_bp",
    "pulse_rate": "pulse", "heart_rate": "pulse", "body_temperature": "temperature",
}


_Band = Literal["low", "low_medium", "medium", "high"]


def _default_severities() -> dict[_Band, Severity]:
    return {"low": "info", "low_medium": "warning", "medium": "urgent", "high": "critical"}


class News2Config(RuleConfig):
    """Fires when the NEWS2 of the patient's latest readings (none older than ``max_age_s``) reaches ``band``.

    A score from fewer than all parameters is partial (it can only be too low, never too high) and
    is judged once ``min_parameters`` are observed. ``scale`` and ``on_oxygen`` come from the
    patient's settings; consciousness is not measured at home and is always listed as missing.
    ``severities`` grades the alert by the band reached. A fired alert ends once the score has stayed
    below ``band`` for ``clear_s`` seconds (a score hovering at the band's edge is one episode, not one per
    crossing).
    """

    type: Literal["news2"] = "news2"
    band: _Band = "medium"
    max_age_s: float = Field(3600.0, gt=0)
    min_parameters: int = Field(3, ge=1, le=7)
    for_s: float = Field(0.0, ge=0)
    clear_s: float = Field(0.0, ge=0)
    scale: Literal[1, 2] = 1
    on_oxygen: bool | None = None
    severities: dict[_Band, Severity] = Field(default_factory=_default_severities)

    def for_settings(self, settings: PatientSettings) -> News2Config:
        if (settings.spo2_scale, settings.on_oxygen) == (self.scale, self.on_oxygen):
            return self
        return self.model_copy(update={"scale": settings.spo2_scale, "on_oxygen": settings.on_oxygen})


class News2Rule(EpisodeRule):
    """See :class:`News2Config`. Memory: ``obs`` as parameter -> ``[time, value, part]``."""

    Config = News2Config

    def __init__(self, config: News2Config) -> None:
        super().__init__(config)
        self.c = config
        self.metric = "news2"
        self.metrics = frozenset(_PARAMETER)
        self.threshold = float(BAND_ORDER.index(config.band))
        self.for_ns = int(config.for_s * 1e9)
        self.clear_ns = int(config.clear_s * 1e9)
        self.max_age_ns = int(config.max_age_s * 1e9)
        self.context_ns = self.max_age_ns + self.for_ns
        self.min_rank = BAND_ORDER.index(config.band)
        oxygen = config.on_oxygen
        self._scorers = {
            "respiration_rate": respiration_rate_score,
            "spo2": (spo2_scale1_score if config.scale == 1
                     else lambda value: spo2_scale2_score(value, bool(oxygen))),
            "systolic_bp": systolic_score, "pulse": pulse_score, "temperature": temperature_score,
        }
        self._parts: dict[str, dict[float, int]] = {name: {} for name in self._scorers}

    def judge(self, memory: dict[str, Any], sample: Sample) -> tuple[float, bool, bool] | None:
        """The total of the fresh parts (value), and whether its band reaches the rule's."""
        parameter = _PARAMETER[sample.metric]
        now, value = sample.time_ns, sample.value
        observations: dict[str, list[float]] = memory.setdefault("obs", {})
        held = observations.get(parameter)
        part: float
        if held is not None and held[1] == value:
            part = held[2]
        else:
            known = self._parts[parameter]
            scored = known.get(value)
            if scored is None:
                scored = self._scorers[parameter](value)
                if len(known) < 4096:  # readings are mostly whole numbers: a small table serves them all
                    known[value] = scored
            part = scored
        observations[parameter] = [now, value, part]
        if held is not None and held[2] == part:
            last = memory.get("last")
            if last is not None and now <= memory["expires"]:
                # The same part, and nothing gone stale since the last judgement: the same judgement.
                return last[0], last[1], last[2]
        oldest = now - self.max_age_ns
        parts = {name: int(entry[2]) for name, entry in observations.items() if entry[0] >= oldest}
        fresh = [entry[0] for name, entry in observations.items() if name in parts]
        memory["expires"] = min(fresh) + self.max_age_ns if fresh else now + self.max_age_ns
        if self.c.on_oxygen is not None:
            parts["air_or_oxygen"] = 2 if self.c.on_oxygen else 0
        if len(parts) < self.c.min_parameters:
            memory["last"] = None
            return None
        total = sum(parts.values())
        band = news2_band(total, parts)
        memory["score"] = [total, band, parts]
        rank = BAND_ORDER.index(band)
        memory["last"] = [float(total), rank >= self.min_rank, rank < self.min_rank]
        return float(total), rank >= self.min_rank, rank < self.min_rank

    def own_memory(self, memory: dict[str, Any]) -> dict[str, Any]:
        """A copy of the observations (entries are replaced, never changed in place)."""
        return {**memory, "obs": dict(memory.get("obs", {}))}

    def quiet_prefix(self, memory: dict[str, Any], samples: Sequence[Sample]) -> int:
        """Readings that keep every part and the last (not firing) judgement: only the latest of each is kept."""
        last = memory.get("last")
        if last is None or last[1] or "expires" not in memory:
            return 0
        observations: dict[str, list[float]] = memory.setdefault("obs", {})
        expires, skip, parts = memory["expires"], self.skip_flags, self._parts
        latest: dict[str, list[float]] = {}
        index = 0
        for index, sample in enumerate(samples):  # noqa: B007 (the index is the answer)
            if sample.quality & skip:
                continue
            parameter = _PARAMETER[sample.metric]
            held = latest.get(parameter) or observations.get(parameter)
            if held is None or sample.time_ns > expires:
                break
            part = held[2] if held[1] == sample.value else parts[parameter].get(sample.value)
            if part != held[2]:
                break
            latest[parameter] = [sample.time_ns, sample.value, held[2]]
        else:
            index = len(samples)
        observations.update(latest)
        return index

    def severity_for(self, episode: Episode) -> str:
        """The severity of the band the episode's worst score reached."""
        band = news2_band(int(episode.worst), {})
        rank = max(BAND_ORDER.index(band), self.min_rank)
        graded: dict[str, Severity] = {str(band): level for band, level in self.c.severities.items()}
        return graded.get(BAND_ORDER[rank], self.severity)

    def describe(self, episode: Episode) -> str:
        """``NEWS2 band medium or above``."""
        return f"NEWS2 {self.c.band.replace('_', '-')} band or above"

    def worst_text(self, episode: Episode) -> str:
        """``highest score 6``."""
        return f"highest score {episode.worst:.0f}"

    def details(self, episode: Episode, memory: dict[str, Any]) -> dict[str, Any]:
        """The latest score: total, band, parts, and which parameters were missing."""
        score = memory.get("score")
        if not score:
            return {}
        total, band, parts = score
        missing = [name for name in NEWS2_PARAMETERS if name not in parts]
        return {"score": total, "band": band, "parts": parts, "partial": bool(missing), "missing": missing,
                "scale": self.c.scale, "max_age": format_duration(self.c.max_age_s)}

