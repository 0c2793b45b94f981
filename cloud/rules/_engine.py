"""The rules engine (pure): many patients' samples and their stored states in, new states and changes out.

Each rule's state per patient is kept with an event-time watermark: the time of the newest sample
it has judged. Samples newer than the watermark advance the state. Older ones (a backfill sent
after live readings) cannot be judged in place without rewriting history, so the engine names
their span (:class:`LateSpan`); the caller reads that span, widened by the rule's context, from the
time-series store and hands it to :meth:`RuleEngine.reevaluate`, which judges it from a fresh state
and marks what it finds ``late``. So a backfill neither raises false alerts (its readings are
judged in their own time order, not against the present) nor hides real ones.

Per-patient settings (:class:`PatientSettings`) tune the rules for one patient: a rule with
``conditions`` judges only patients whose settings list one of them (patients without settings get
the rules without conditions), and a patient's overrides build a variant of the rule for that
patient alone. Every change records the version of the rule configuration and settings it used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from cloud.rules._base import AlertChange, Rule, RuleState
from cloud.rules._facts import PatientFacts
from cloud.rules._settings import PatientSettings
from vitals.samples import Sample

__all__ = ["EngineResult", "LateSpan", "RuleEngine", "StateKey", "merge_spans"]

StateKey = tuple[str, str]
"""``(rule name, patient)``: what one stored state belongs to."""

_BY_TIME = itemgetter(1)  # Sample.time_ns
_METRIC = itemgetter(0)
_BY_METRIC_TIME = itemgetter(0, 1)


@dataclass(frozen=True, slots=True)
class LateSpan:
    """Samples of ``rule``'s metrics for ``patient`` between ``start_ns`` and ``end_ns`` arrived late."""

    rule: str
    patient: str
    start_ns: int
    end_ns: int


@dataclass
class EngineResult:
    """What one evaluation changed: states to store, alert changes, late spans to re-evaluate."""

    states: dict[StateKey, RuleState] = field(default_factory=dict)
    changes: list[AlertChange] = field(default_factory=list)
    late: list[LateSpan] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Active:
    rule: Rule
    version: str | None
    single: str | None  # the rule's one metric, when it has exactly one


# How a rule of a plan gets its samples: the group of its one present metric (a str), every sample
# in time order (True: its metrics cover all present ones), or the time-ordered ones of its metrics.
_Feed = str | bool


@dataclass(slots=True)
class _Plan:
    """The rules that judge one patient, and per set of metrics present the ones that run and how they are fed."""

    actives: list[_Active]
    runs: dict[frozenset[str], list[tuple[_Active, _Feed]]] = field(default_factory=dict)

    def run(self, present: frozenset[str]) -> list[tuple[_Active, _Feed]]:
        """The rules (in their configured order) that see one of ``present``'s metrics."""
        found = self.runs.get(present)
        if found is None:
            if len(self.runs) >= _PLANS:  # a bounded cache: the mixes of metrics a patient sends are few
                self.runs.clear()
            found = self.runs[present] = [(active, _feed(active.rule.metrics, present)) for active in self.actives
                                          if not active.rule.metrics.isdisjoint(present)]
        return found


_PLANS = 64


def _feed(metrics: frozenset[str], present: frozenset[str]) -> _Feed:
    common = metrics & present
    if len(common) == 1:
        return next(iter(common))  # that metric's group is its samples in time order
    return metrics >= present


def _group(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Samples by metric, each group in time order (ties keep their arrival order)."""
    by_metric: dict[str, list[Sample]] = {}
    # Samples usually arrive a stream at a time, each in time order: then grouping is all it takes.
    for metric, run in groupby(samples, key=_METRIC):
        group = list(run)
        times = list(map(_BY_TIME, group))
        if metric in by_metric or times != sorted(times):
            break
        by_metric[metric] = group
    else:
        return by_metric
    return {metric: list(run) for metric, run in groupby(sorted(samples, key=_BY_METRIC_TIME), key=_METRIC)}


def _version(rule: Rule, settings: PatientSettings | None) -> str | None:
    own = getattr(rule, "version", None)
    if own is None:
        return None
    return own if settings is None else f"{own}@{settings.version}"


class RuleEngine:
    """Runs ``rules`` over patients' samples; holds no state of its own.

    ``settings`` (patient -> :class:`PatientSettings`) is used when a call passes none; replace it
    when a doctor changes a patient's settings. ``pending`` passes the rules' ``pending``
    announcements (and the end of an episode that never fired) through; off, only alerts that fire
    and their resolution come out (what a store without the pending lifecycle expects).
    """

    def __init__(self, rules: Sequence[Rule], settings: Mapping[str, PatientSettings] | None = None, *,
                 pending: bool = False) -> None:
        names = [rule.name for rule in rules]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicated)}")
        self.rules = list(rules)
        self.settings: Mapping[str, PatientSettings] = settings or {}
        self.pending = pending
        self._by_name = {rule.name: rule for rule in rules}
        self.metrics: frozenset[str] = frozenset().union(*(rule.metrics for rule in rules))
        self._plain = _Plan([self._active(rule, None) for rule in self.rules
                             if not getattr(rule, "conditions", None)])
        self._tuned: dict[str, tuple[PatientSettings, _Plan]] = {}

    def rule(self, name: str) -> Rule:
        """The rule called ``name``."""
        return self._by_name[name]

    @staticmethod
    def _active(rule: Rule, settings: PatientSettings | None) -> _Active:
        single = next(iter(rule.metrics)) if len(rule.metrics) == 1 else None
        return _Active(rule, _version(rule, settings), single)

    def rules_for(self, patient: str, settings: PatientSettings | None = None) -> list[Rule]:
        """The rules (tuned by ``settings``, else the engine's) that judge ``patient``; ValueError: a bad override."""
        chosen = self.settings.get(patient) if settings is None else settings
        return [active.rule for active in self._rules_for(patient, chosen)]

    def _rules_for(self, patient: str, settings: PatientSettings | None) -> list[_Active]:
        return self._plan(patient, settings).actives

    def _plan(self, patient: str, settings: PatientSettings | None) -> _Plan:
        if settings is None:
            return self._plain
        cached = self._tuned.get(patient)
        if cached is not None and cached[0] is settings:
            return cached[1]
        active: list[_Active] = []
        for rule in self.rules:
            conditions = getattr(rule, "conditions", None)
            if conditions and not conditions & settings.conditions:
                continue
            tune = getattr(rule, "for_patient", None)
            tuned: Rule = tune(settings) if tune is not None else rule
            if getattr(tuned, "config", None) is not None and not tuned.config.enabled:  # type: ignore[attr-defined]
                continue
            active.append(self._active(tuned, settings))
        plan = _Plan(active)
        self._tuned[patient] = (settings, plan)
        return plan

    def keys_for(self, patients_metrics: Mapping[str, Iterable[str]]) -> list[StateKey]:
        """The state keys an evaluation of these patients' metrics will read."""
        keys: list[StateKey] = []
        for patient, metrics in patients_metrics.items():
            present = set(metrics)
            keys.extend((rule.name, patient) for rule in self.rules if rule.metrics & present)
        return keys

    def evaluate(self, states: Mapping[StateKey, RuleState], samples_by_patient: Mapping[str, Sequence[Sample]],
                 settings: Mapping[str, PatientSettings] | None = None) -> EngineResult:
        """Advance every affected rule state with each patient's samples (any order; sorted here).

        ``states`` maps keys to stored states (absent: fresh). Stored states wrap the rule's own
        state as ``{"watermark": ns, "rule": {...}}``. ``settings`` overrides the engine's own.
        """
        result = EngineResult()
        table = self.settings if settings is None else settings
        for patient, samples in samples_by_patient.items():
            if not samples:
                continue
            by_metric = _group(samples)
            ordered: list[Sample] | None = None
            for active, feed in self._plan(patient, table.get(patient)).run(frozenset(by_metric)):
                rule = active.rule
                own: Sequence[Sample]
                if isinstance(feed, str):
                    own = by_metric[feed]
                else:
                    if ordered is None:
                        ordered = sorted(samples, key=_BY_TIME)
                    metrics = rule.metrics
                    own = ordered if feed else [sample for sample in ordered if sample.metric in metrics]
                key = (rule.name, patient)
                stored = states.get(key)
                watermark = int(stored["watermark"]) if stored else -1
                if own[0].time_ns > watermark:
                    fresh: Sequence[Sample] = own
                else:
                    fresh = [sample for sample in own if sample.time_ns > watermark]
                    late = [sample for sample in own if sample.time_ns < watermark]
                    if late and getattr(rule, "reevaluates", True):
                        result.late.append(LateSpan(rule.name, patient, late[0].time_ns, late[-1].time_ns))
                    if not fresh:
                        continue
                rule_state, changes = rule.evaluate(stored["rule"] if stored else None, patient, fresh)
                result.states[key] = {"watermark": fresh[-1].time_ns, "rule": rule_state}
                if changes:
                    result.changes.extend(self._stamp(changes, active.version))
        return result

    def _stamp(self, changes: list[AlertChange], version: str | None, late: bool = False) -> list[AlertChange]:
        kept = changes if self.pending and not late else [c for c in changes if _fired(c)]
        if version is None and not late:
            return kept
        return [dataclasses.replace(c, rule_version=version or c.rule_version, late=late or c.late) for c in kept]

    @property
    def ticking(self) -> frozenset[str]:
        """Names of the rules that can change on the clock alone (the only ones :meth:`tick` needs)."""
        return frozenset(rule.name for rule in self.rules if rule.ticks)

    def tick(self, states: Mapping[StateKey, RuleState], now_ns: int,
             settings: Mapping[str, PatientSettings] | None = None,
             facts: Mapping[str, PatientFacts] | None = None) -> EngineResult:
        """Advance every stored state to the clock time ``now_ns``; only states that changed are returned.

        ``facts`` (patient -> :class:`PatientFacts`) feed the rules that judge them (``gateway_offline``),
        for every patient named, stored state or not.
        """
        result = EngineResult()
        table = self.settings if settings is None else settings
        for (name, patient), stored in states.items():
            active = self._find(name, patient, table)
            if active is None:
                continue  # a rule removed from the configuration (or not this patient's): its state stays
            rule = active.rule
            if getattr(rule, "uses_facts", False):
                continue  # judged below, with the patient's facts
            rule_state, changes = rule.tick(stored.get("rule"), patient, now_ns)
            if rule_state != stored.get("rule"):
                result.states[(name, patient)] = {**stored, "rule": rule_state}
            result.changes.extend(self._stamp(changes, active.version))
        for patient, known in (facts or {}).items():
            for active in self._rules_for(patient, table.get(patient)):
                rule = active.rule
                if not getattr(rule, "uses_facts", False):
                    continue
                stored = states.get((rule.name, patient)) or {"watermark": -1, "rule": None}
                rule_state, changes = rule.tick_facts(stored.get("rule"), patient, now_ns, known)  # type: ignore[attr-defined]
                if rule_state != stored.get("rule"):
                    result.states[(rule.name, patient)] = {**stored, "rule": rule_state}
                result.changes.extend(self._stamp(changes, active.version))
        return result

    def _find(self, name: str, patient: str, table: Mapping[str, PatientSettings]) -> _Active | None:
        for active in self._rules_for(patient, table.get(patient)):
            if active.rule.name == name:
                return active
        return None

    def window(self, span: LateSpan) -> tuple[int, int]:
        """The ``(start, end)`` ns to read back for re-evaluating ``span``: widened by the rule's context."""
        context = self._by_name[span.rule].context_ns
        return max(0, span.start_ns - context), span.end_ns + context

    def reevaluate(self, span: LateSpan, history: Sequence[Sample],
                   settings: Mapping[str, PatientSettings] | None = None) -> list[AlertChange]:
        """Judge the stored ``history`` of a late span from a fresh state; changes come back marked late.

        Only alerts that fired come back (a pending announcement about the past means nothing).
        """
        table = self.settings if settings is None else settings
        active = self._find(span.rule, span.patient, table)
        if active is None:
            return []
        rule = active.rule
        ordered = sorted((s for s in history if s.metric in rule.metrics), key=_BY_TIME)
        _state, changes = rule.evaluate(None, span.patient, ordered)
        return self._stamp(changes, active.version, late=True)


def _fired(change: AlertChange) -> bool:
    return change.state != "pending" and change.details.get("fired", True) is not False


def merge_spans(spans: Iterable[LateSpan]) -> list[LateSpan]:
    """One span per (rule, patient), covering all of its late samples."""
    merged: dict[StateKey, LateSpan] = {}
    for span in spans:
        key = (span.rule, span.patient)
        if key in merged:
            old = merged[key]
            span = LateSpan(span.rule, span.patient, min(old.start_ns, span.start_ns), max(old.end_ns, span.end_ns))
        merged[key] = span
    return list(merged.values())
