"""What every rule is and what it emits.

Rules are pure: ``(state, samples) -> (state, changes)`` and ``(state, now) -> (state, changes)``.
The state is plain JSON-able data the cloud stores beside the batches that changed it, so a
restarted or redelivered evaluation continues the same episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from vitals.samples import Quality, Sample

__all__ = [
    "SEVERITIES",
    "UNTRUSTED",
    "AlertChange",
    "Rule",
    "RuleState",
    "Severity",
    "format_duration",
    "normalise_severity",
]

RuleState = dict[str, Any]
"""A rule's state for one patient: JSON-able (str keys; str, int, float, bool, None, lists, dicts)."""

Severity = Literal["info", "warning", "urgent", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "urgent", "critical")
"""From least to most severe."""

_LEGACY_SEVERITIES: dict[str, Severity] = {"high": "urgent"}

# Values flagged as artefacts, poor signal or filled in never drive an alert by themselves.
UNTRUSTED = int(Quality.ARTIFACT | Quality.LOW_SIGNAL_QUALITY | Quality.INTERPOLATED | Quality.DEVICE_QUESTIONABLE)


def normalise_severity(severity: str) -> Severity:
    """``severity`` as one of :data:`SEVERITIES`; the older ``high`` reads as ``urgent``."""
    if severity in _LEGACY_SEVERITIES:
        return _LEGACY_SEVERITIES[severity]
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return severity


def format_duration(seconds: float) -> str:
    """A duration as people write it: ``45 s``, ``12 min``, ``1 h 49 min``, ``2 d 3 h``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert episode announced, opened or updated, or ended.

    ``state`` is ``"pending"`` once when a condition with a ``for`` delay starts (it fires at
    ``fired_ns`` if it holds that long), ``"open"`` when it fires and as it goes on, and
    ``"resolved"`` when its clear condition holds. A pending episode that ends before it fires is
    ``"resolved"`` with ``details["fired"] = False``. ``(rule, patient, episode_start_ns)`` names the
    episode; the store upserts on it, so evaluating the same data twice changes nothing. ``late``
    marks a change found by re-evaluating a window of late (backfilled) data: it joins an alert
    whose episode overlaps it instead of opening one. ``rule_version`` names the rule configuration
    and patient settings that judged it; ``details`` carries rule-specific facts (JSON-able).
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
    rule_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict, hash=False)


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
