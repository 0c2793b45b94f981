"""The rules engine (pure): many patients' samples and their stored states in, new states and changes out.

Each rule's state per patient is kept with an event-time watermark: the time of the newest sample
it has judged. Samples newer than the watermark advance the state. Older ones (a backfill sent
after live readings) cannot be judged in place without rewriting history, so the engine names
their span (:class:`LateSpan`); the caller reads that span, widened by the rule's context, from the
time-series store and hands it to :meth:`RuleEngine.reevaluate`, which judges it from a fresh state
and marks what it finds ``late``. So a backfill neither raises false alerts (its readings are
judged in their own time order, not against the present) nor hides real ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cloud.rules._base import AlertChange, Rule, RuleState
from vitals.samples import Sample

__all__ = ["EngineResult", "LateSpan", "RuleEngine", "StateKey", "merge_spans"]

StateKey = tuple[str, str]
"""``(rule name, patient)``: what one stored state belongs to."""


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


class RuleEngine:
    """Runs ``rules`` over patients' samples; holds no state of its own."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        names = [rule.name for rule in rules]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicated)}")
        self.rules = list(rules)
        self._by_name = {rule.name: rule for rule in rules}
        self.metrics: frozenset[str] = frozenset().union(*(rule.metrics for rule in rules))

    def rule(self, name: str) -> Rule:
        """The rule called ``name``."""
        return self._by_name[name]

    def keys_for(self, patients_metrics: Mapping[str, Iterable[str]]) -> list[StateKey]:
        """The state keys an evaluation of these patients' metrics will read."""
        keys: list[StateKey] = []
        for patient, metrics in patients_metrics.items():
            present = set(metrics)
            keys.extend((rule.name, patient) for rule in self.rules if rule.metrics & present)
        return keys

    def evaluate(self, states: Mapping[StateKey, RuleState],
                 samples_by_patient: Mapping[str, Sequence[Sample]]) -> EngineResult:
        """Advance every affected rule state with each patient's samples (any order; sorted here).

        ``states`` maps keys to stored states (absent: fresh). Stored states wrap the rule's own
        state as ``{"watermark": ns, "rule": {...}}``.
        """
        result = EngineResult()
        for patient, samples in samples_by_patient.items():
            ordered = sorted(samples, key=lambda sample: sample.time_ns)
            for rule in self.rules:
                own = [sample for sample in ordered if sample.metric in rule.metrics]
                if not own:
                    continue
                key = (rule.name, patient)
                stored = states.get(key)
                watermark = int(stored["watermark"]) if stored else -1
                fresh = [sample for sample in own if sample.time_ns > watermark]
                late = [sample for sample in own if sample.time_ns < watermark]
                if late:
                    result.late.append(LateSpan(rule.name, patient, late[0].time_ns, late[-1].time_ns))
                if not fresh:
                    continue
                rule_state, changes = rule.evaluate(stored["rule"] if stored else None, patient, fresh)
                result.states[key] = {"watermark": fresh[-1].time_ns, "rule": rule_state}
                result.changes.extend(changes)
        return result

    @property
    def ticking(self) -> frozenset[str]:
        """Names of the rules that can change on the clock alone (the only ones :meth:`tick` needs)."""
        return frozenset(rule.name for rule in self.rules if rule.ticks)

    def tick(self, states: Mapping[StateKey, RuleState], now_ns: int) -> EngineResult:
        """Advance every stored state to the clock time ``now_ns``; only states that changed are returned."""
        result = EngineResult()
        for (name, patient), stored in states.items():
            rule = self._by_name.get(name)
            if rule is None:
                continue  # a rule removed from the configuration: its state stays as it was
            rule_state, changes = rule.tick(stored.get("rule"), patient, now_ns)
            if rule_state != stored.get("rule"):
                result.states[(name, patient)] = {**stored, "rule": rule_state}
            result.changes.extend(changes)
        return result

    def window(self, span: LateSpan) -> tuple[int, int]:
        """The ``(start, end)`` ns to read back for re-evaluating ``span``: widened by the rule's context."""
        context = self._by_name[span.rule].context_ns
        return max(0, span.start_ns - context), span.end_ns + context

    def reevaluate(self, span: LateSpan, history: Sequence[Sample]) -> list[AlertChange]:
        """Judge the stored ``history`` of a late span from a fresh state; changes come back marked late."""
        rule = self._by_name[span.rule]
        ordered = sorted((s for s in history if s.metric in rule.metrics), key=lambda sample: sample.time_ns)
        _state, changes = rule.evaluate(None, span.patient, ordered)
        return [dataclasses.replace(change, late=True) for change in changes]


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

