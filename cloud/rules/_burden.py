"""The alert burden of a patient's settings: how many alerts the rules would have raised on a recording.

Pure: the samples are replayed through the engine (:func:`cloud.rules._replay.replay`) with the
settings given, and every episode that fired counts once, by rule. A doctor compares the counts of
the current settings and a proposal before saving it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloud.rules._engine import RuleEngine
from cloud.rules._replay import replay
from cloud.rules._settings import PatientSettings
from vitals.samples import Sample

__all__ = ["AlertBurden", "alert_burden"]


@dataclass(frozen=True)
class AlertBurden:
    """Alerts that fired in a replay: the total and per rule name."""

    alerts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


def alert_burden(engine: RuleEngine, patient: str, samples: Sequence[Sample], settings: PatientSettings | None, *,
                 tick_s: float = 60.0) -> AlertBurden:
    """Replay ``patient``'s ``samples`` with ``settings`` (None: the plain rules); count the episodes that fired.

    Raises ValueError when ``settings`` hold an override a rule refuses.
    """
    engine.rules_for(patient, settings or PatientSettings())  # a bad override is refused before any replay
    table = {patient: settings} if settings is not None else {}
    fired: set[tuple[str, int]] = set()
    for change in replay(engine, [(patient, sample) for sample in samples], table, tick_s=tick_s):
        if change.state == "open":
            fired.add((change.rule, change.episode_start_ns))
    counts = Counter(rule for rule, _start in fired)
    return AlertBurden(sum(counts.values()), dict(sorted(counts.items())))
