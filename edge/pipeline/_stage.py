"""The stage interface: a small object that owns its state and turns streams into streams."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from edge.pipeline._options import StageOptions
from vitals import Metric, Stream

__all__ = ["PipelineConfigError", "Stage"]


class PipelineConfigError(ValueError):
    """A pipeline configuration names an unknown metric, stage or option, or a bad value."""


class Stage:
    """One step of a metric's chain (validate, filter, derive or compress).

    A stage is built for one metric with its options (``OPTIONS`` lists the keys it reads and their
    defaults, ``None`` meaning "derived from the catalogue"; ``Options`` is the pydantic model of their
    types and ranges, checked before the stage is built). ``process`` takes a chunk of the metric
    and returns streams: those of the same metric go on down the chain, those of other metrics
    (derived, e.g. ``heart_rate`` from ``ecg``) go to that metric's own chain. ``flush`` returns
    what the stage held back and is due at ``now_ns`` (all of it when ``final``). ``counters``
    counts what the stage did (flagged, rejected by reason, ...).
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[Mapping[str, Any]] = {}
    Options: ClassVar[type[StageOptions]] = StageOptions
    """The pydantic model of the options (types, ranges): the config is checked against it first."""

    def __init__(self, metric: Metric, options: Mapping[str, Any]) -> None:
        self.metric = metric
        self.options = {**self.OPTIONS, **{k: v for k, v in options.items() if k in self.OPTIONS}}
        self.counters: Counter[str] = Counter()

    def process(self, stream: Stream) -> list[Stream]:
        """Return the streams that follow from ``stream`` (a chunk of :attr:`metric`)."""
        return [stream]

    def flush(self, now_ns: int, *, final: bool = False) -> list[Stream]:
        """Return streams held back that are due at ``now_ns`` (ns since the epoch)."""
        return []

    @property
    def held(self) -> int:
        """Number of samples (or items) this stage holds in memory; bounded over any run."""
        return 0

    def set_threshold_levels(self, levels: tuple[float, ...]) -> None:
        """Take the patient's threshold levels for this metric (from the cloud, in the metric unit),
        replacing earlier ones. Stages that must keep their crossings exact override this."""

    def _option_float(self, key: str, default: float | None = None) -> float:
        value = self.options.get(key)
        if value is None:
            if default is None:
                raise PipelineConfigError(f"{self.metric.name}.{key}: a number is required")
            return float(default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PipelineConfigError(f"{self.metric.name}.{key}: expected a number, got {value!r}")
        return float(value)
