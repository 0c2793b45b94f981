"""What every rule is and what it emits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from vitals.samples import Sample

__all__ = ["AlertChange", "Rule"]


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert episode opened or updated (``state="open"``) or ended (``state="resolved"``).

    ``(rule, patient, episode_start_ns)`` names the episode; the store upserts on it, so evaluating
    the same data twice changes nothing.
    """

    rule: str
    patient: str
    metric: str
    severity: str
    episode_start_ns: int
    fired_ns: int
    last_ns: int
    worst_value: float
    threshold: float
    message: str
    state: Literal["open", "resolved"]
    resolved_ns: int | None = None


class Rule(Protocol):
    """A rule sees one patient's samples of its metrics in time order and reports alert changes."""

    name: str
    metrics: frozenset[str]

    def evaluate(self, patient: str, samples: Sequence[Sample]) -> list[AlertChange]:
        """Advance the rule's state for ``patient`` with ``samples`` (time-ordered, its metrics only)."""
        ...
