"""The chains: :class:`StreamPipeline` (one metric) and :class:`Pipeline` (one device, all metrics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from edge.pipeline._stage import PipelineConfigError, Stage
from edge.pipeline.builtin import default_chain
from edge.pipeline.registry import stage_class
from vitals import CATALOGUE, Stream

__all__ = ["Pipeline", "StreamPipeline"]


class StreamPipeline:
    """The chain of stages of one metric from one device, e.g. validate -> filter -> derive -> compress.

    ``stages`` is the chain, in order. Streams of the metric flow down it; streams of other metrics
    that a stage derives are returned alongside (the :class:`Pipeline` routes them to their chain).
    """

    def __init__(self, metric: str, stages: list[Stage]) -> None:
        self.metric = metric
        self.stages = stages

    @classmethod
    def for_metric(cls, metric: str, config: Mapping[str, Any] | None = None) -> StreamPipeline:
        """Build the chain of ``metric`` from its config section.

        ``config`` may name the chain (``stages: [validate, swinging_door]``; default
        :func:`edge.pipeline.builtin.default_chain`) and set any option of its stages, flat
        (``mains_hz: 60``, ``heartbeat_s: 120`` ...). Unknown metrics, stages or options raise
        :class:`PipelineConfigError`.
        """
        if metric not in CATALOGUE:
            raise PipelineConfigError(f"unknown metric {metric!r}")
        options = dict(config or {})
        names = options.pop("stages", None)
        if names is None:
            names = default_chain(metric)
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise PipelineConfigError(f"{metric}.stages: expected a list of stage names")
        classes = [stage_class(name) for name in names]
        claimed = {key for stage in classes for key in stage.OPTIONS}
        unknown = sorted(set(options) - claimed)
        if unknown:
            raise PipelineConfigError(
                f"{metric}: option(s) {', '.join(unknown)} not used by any stage of {list(names)}"
            )
        entry = CATALOGUE[metric]
        return cls(metric, [stage(entry, options) for stage in classes])

    def process(self, stream: Stream) -> list[Stream]:
        """Run a chunk of this metric down the chain; return what comes out (and derived streams)."""
        return self._run(0, [stream])

    def flush(self, now_ns: int, *, final: bool = False) -> list[Stream]:
        """Collect what stages release at ``now_ns``; each release runs through the rest of the chain."""
        out: list[Stream] = []
        for position, stage in enumerate(self.stages):
            out += self._run(position + 1, stage.flush(now_ns, final=final))
        return out

    def _run(self, first: int, streams: list[Stream]) -> list[Stream]:
        derived: list[Stream] = []
        current = [s for s in streams if len(s)]
        for stage in self.stages[first:]:
            following: list[Stream] = []
            for stream in current:
                for result in stage.process(stream):
                    if not len(result):
                        continue
                    (following if result.metric == self.metric else derived).append(result)
            current = following
        return current + derived

    def set_threshold_levels(self, levels: tuple[float, ...]) -> None:
        """Give every stage the patient's threshold levels of this metric (see :class:`Stage`)."""
        for stage in self.stages:
            stage.set_threshold_levels(levels)

    @property
    def counters(self) -> dict[str, int]:
        """Counters of every stage, keyed ``"<metric>.<stage>.<counter>"``."""
        return {
            f"{self.metric}.{stage.name}.{key}": value
            for stage in self.stages
            for key, value in stage.counters.items()
        }

    @property
    def held(self) -> int:
        """Samples held across the chain (bounded over any run)."""
        return sum(stage.held for stage in self.stages)


class Pipeline:
    """Every chain of one device: feed chunks of any metric, get the streams to send.

    ``config`` maps metric names to their section (see :meth:`StreamPipeline.for_metric`); an
    optional ``defaults`` section applies to every metric whose chain uses the option. Chains are
    built on first use. One instance per device: chains keep per-device state.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        defaults = dict(config.pop("defaults", None) or {})
        unknown = sorted(set(config) - set(CATALOGUE))
        if unknown:
            raise PipelineConfigError(f"unknown metric(s) in pipeline config: {', '.join(unknown)}")
        self._sections: dict[str, dict[str, Any]] = {}
        for metric in CATALOGUE:
            section = dict(config.get(metric) or {})
            names = section.get("stages") or default_chain(metric)
            claimed = {key for name in names for key in stage_class(name).OPTIONS}
            self._sections[metric] = {**{k: v for k, v in defaults.items() if k in claimed}, **section}
        # Build every configured chain now so that configuration errors surface at start.
        self.chains: dict[str, StreamPipeline] = {
            metric: StreamPipeline.for_metric(metric, self._sections[metric]) for metric in config
        }
        self._counters: Counter[str] = Counter()
        self._levels: dict[str, tuple[float, ...]] = {}

    def chain(self, metric: str) -> StreamPipeline:
        """Return (building on first use) the chain of ``metric``."""
        chain = self.chains.get(metric)
        if chain is None:
            chain = self.chains[metric] = StreamPipeline.for_metric(metric, self._sections[metric])
            if metric in self._levels:
                chain.set_threshold_levels(self._levels[metric])
        return chain

    def set_threshold_levels(self, levels: Mapping[str, tuple[float, ...]]) -> None:
        """Apply the patient's threshold levels by metric (from the cloud), replacing all earlier ones:
        the compression keeps every crossing of them exactly. Metrics left out have none."""
        self._levels = {metric: tuple(values) for metric, values in levels.items() if metric in CATALOGUE}
        for metric, chain in self.chains.items():
            chain.set_threshold_levels(self._levels.get(metric, ()))

    def process(self, stream: Stream) -> list[Stream]:
        """Take a chunk of one metric (times in ns); return zero or more streams to send."""
        if stream.metric not in CATALOGUE:
            self._counters["pipeline.rejected.unknown_metric"] += len(stream)
            return []
        return self._route(self.chain(stream.metric).process(stream), stream.metric)

    def flush(self, now_ns: int, *, final: bool = False) -> list[Stream]:
        """Return heartbeat readings and anything held back that is due at ``now_ns`` (ns).

        The clock is passed in. ``final=True`` (shutdown) releases everything held.
        """
        out: list[Stream] = []
        for metric, chain in list(self.chains.items()):
            out += self._route(chain.flush(now_ns, final=final), metric)
        return _merge(out)

    def _route(self, streams: list[Stream], source: str) -> list[Stream]:
        out: list[Stream] = []
        for stream in streams:
            if stream.metric == source:
                out.append(stream)
            else:
                # Derived metrics run their own chain (which never derives back).
                out += [s for s in self.chain(stream.metric).process(stream) if s.metric == stream.metric]
        return _merge(out)

    @property
    def counters(self) -> dict[str, int]:
        """Every chain's counters (``"<metric>.<stage>.<counter>"``) plus the pipeline's own."""
        merged: dict[str, int] = dict(self._counters)
        for chain in self.chains.values():
            merged.update(chain.counters)
        return merged

    @property
    def indicators(self) -> dict[str, dict[str, Any]]:
        """Gateway-side indicators by metric (HRV, AF irregularity, signal quality)."""
        out: dict[str, dict[str, Any]] = {}
        for metric, chain in self.chains.items():
            for stage in chain.stages:
                values = getattr(stage, "indicators", None)
                if isinstance(values, dict):
                    out[metric] = values
        return out

    @property
    def held(self) -> int:
        """Samples held across all chains (bounded over any run)."""
        return sum(chain.held for chain in self.chains.values())


def _merge(streams: list[Stream]) -> list[Stream]:
    """Join irregular streams of the same metric (in time order); regular streams stay as they are."""
    if len(streams) < 2:
        return streams
    out: list[Stream] = []
    groups: dict[str, list[Stream]] = {}
    for stream in streams:
        if stream.rate_hz is not None:
            out.append(stream)
        else:
            groups.setdefault(stream.metric, []).append(stream)
    for metric, group in groups.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        times = np.concatenate([s.times_ns for s in group])
        order = np.argsort(times, kind="stable")
        out.append(Stream(metric, group[0].unit, times[order],
                          np.concatenate([s.values for s in group])[order],
                          np.concatenate([s.quality for s in group])[order]))
    return out
