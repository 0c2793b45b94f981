"""What every rule is and what it emits.

Rules are pure: ``(state, samples) -> (state, changes)`` and ``(state, now) -> (state, changes)``.
The state is plain JSON-able data the cloud stores beside the batches that changed it, so a
restarted or redelivered evaluation continues the same episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from vitals.samples import Sample

__all__ = ["AlertChange", "Rule", "RuleState"]

RuleState = dict[str, Any]
"""A rule's state for one patient: JSON-able (str keys; str, int, float, bool, None, lists, dicts)."""


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert episode opened or updated (``state="open"``) or ended (``state="resolved"``).

    ``(rule, patient, episode_start_ns)`` names the episode; the store upserts on it, so evaluating
    the same data twice changes nothing. ``late`` marks a change found by re-evaluating a window
    of late (backfilled) data: it joins an alert whose episode overlaps it instead of opening one.
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
    state: Literal["pending", "open", "resolved"]
    resolved_ns: int | None = None
    late: bool = False


class Rule(Protocol):
    """A rule judges one patient's samples of its metrics, in event-time order, from a state it is handed.

    ``context_ns`` is how far back a sample's judgement can reach (e.g. the hold and clear times):
    late data is re-evaluated over its own span widened by it.
    """

    name: str
    metrics: frozenset[str]
    context_ns: int
    ticks: bool
    """True when the rule can change on the clock alone (silence rules); only those are ticked."""

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Advance ``state`` (None: a fresh patient) with time-ordered ``samples`` of its metrics."""
        ...

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Advance ``state`` to the clock time ``now_ns`` (Unix ns) without new data (silence rules)."""
        ...
