"""Drive rules as the cloud does: through the engine, every state stored as JSON between calls."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cloud.rules import AlertChange, PatientFacts, PatientSettings, Rule, RuleEngine, RuleState, StateKey, build_rules
from vitals.samples import Sample

S = 10**9  # ns per second
T0 = 1_700_000_000 * S


class Stored:
    """Rules run by the engine with their states stored as JSON between calls (as the database keeps them).

    Changes come back without ``rule_version`` (checked here to be the version of the rule that judged them).
    """

    def __init__(self, *rules: Rule, settings: Mapping[str, PatientSettings] | None = None,
                 pending: bool = False) -> None:
        self.engine = RuleEngine(list(rules), settings, pending=pending)
        self.stored: dict[StateKey, str] = {}

    @property
    def states(self) -> dict[StateKey, RuleState]:
        """The stored states, decoded."""
        return {key: json.loads(text) for key, text in self.stored.items()}

    def _keep(self, changes: list[AlertChange]) -> list[AlertChange]:
        for change in changes:
            rule = self.engine.rule(change.rule)
            version = getattr(rule, "version", None)
            assert change.rule_version is None or version is None or change.rule_version.startswith(version) or (
                "@" in change.rule_version)
        return [dataclasses.replace(change, rule_version=None) for change in changes]

    def evaluate(self, patient: str, samples: Sequence[Sample]) -> list[AlertChange]:
        """Evaluate one patient's samples."""
        result = self.engine.evaluate(self.states, {patient: samples})
        self.stored.update({key: json.dumps(state) for key, state in result.states.items()})
        return self._keep(result.changes)

    def tick(self, now_ns: int, facts: Mapping[str, PatientFacts] | None = None) -> list[AlertChange]:
        """Tick the clock."""
        result = self.engine.tick(self.states, now_ns, facts=facts)
        self.stored.update({key: json.dumps(state) for key, state in result.states.items()})
        return self._keep(result.changes)


def rule_from(entry: dict[str, Any]) -> Rule:
    """One rule from its configuration entry."""
    [rule] = build_rules([entry])
    return rule


def series(points: Iterable[tuple[float, float]], metric: str = "spo2", quality: int = 0) -> list[Sample]:
    """Samples from (seconds after T0, value) pairs."""
    return [Sample(metric, T0 + int(seconds * S), value, quality) for seconds, value in points]
