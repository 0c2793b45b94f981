"""The doctor's worklist order: who needs attention first (pure).

Patients are ranked by, in turn:

1. the most severe unacknowledged alert (critical, urgent, warning, info, none), then how many of each;
2. the clinical score (NEWS2, or a condition's own score) and then its trend, higher first; a patient
   without a score (too few recent readings) counts as scoring 0, so that silence decides next;
3. hours since the last data arrived, longer first (a patient who never sent anything counts as the
   longest silence);
4. adherence to the care plan (measurements received / expected), lower first; none expected last;
5. the patient id, so that the order is total and never depends on the order of the input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["SEVERITY_ORDER", "WorklistFacts", "attention_key", "rank_worklist", "top_severity"]

SEVERITY_ORDER: tuple[str, ...] = ("critical", "urgent", "warning", "info")
"""Alert severities, most severe first."""


@dataclass(frozen=True, slots=True)
class WorklistFacts:
    """What the ranking needs to know of one patient.

    ``unacknowledged``: severity -> number of alerts firing and not yet acknowledged; ``score`` and
    ``score_trend`` (points per day); ``hours_since_data`` (None: no data ever); ``adherence`` as a
    ratio in [0, 1] (None: nothing expected).
    """

    patient: str
    unacknowledged: Mapping[str, int] = field(default_factory=dict)
    score: float | None = None
    score_trend: float | None = None
    hours_since_data: float | None = None
    adherence: float | None = None


def top_severity(counts: Mapping[str, int]) -> str | None:
    """The most severe severity with a positive count in ``counts`` (None when there is none)."""
    for severity in SEVERITY_ORDER:
        if counts.get(severity, 0) > 0:
            return severity
    return None


def _finite(value: float | None, missing: float) -> float:
    if value is None or math.isnan(value):
        return missing
    return value


def attention_key(facts: WorklistFacts) -> tuple[object, ...]:
    """A sort key: smaller means more urgent. Sorting by it is the worklist order."""
    top = top_severity(facts.unacknowledged)
    severity_rank = SEVERITY_ORDER.index(top) if top is not None else len(SEVERITY_ORDER)
    counts = tuple(-max(0, facts.unacknowledged.get(s, 0)) for s in SEVERITY_ORDER)
    score = -_finite(facts.score, 0.0)
    trend = -_finite(facts.score_trend, 0.0)
    silence = -_finite(facts.hours_since_data, math.inf)
    adherence = _finite(facts.adherence, math.inf)
    return (severity_rank, counts, score, trend, silence, adherence, facts.patient)


def rank_worklist(patients: Iterable[WorklistFacts]) -> list[WorklistFacts]:
    """``patients`` in worklist order (most in need of attention first)."""
    return sorted(patients, key=attention_key)
