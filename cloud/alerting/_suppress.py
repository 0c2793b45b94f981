"""Silences and inhibition (pure): whether a notification is held back, and why.

A **silence** is written by a person: "patient p-7 is in hospital until Friday" (every rule), or
only one rule or one metric of that patient. It holds notifications back until it expires; the
alert is still recorded and goes through its lifecycle.

**Inhibition** is written in the policy: while an alert of the source kind fires (or is
acknowledged), alerts of the target kind that share the listed labels send nothing. The default
chain: a ``gateway_offline`` alert inhibits the same patient's ``no_data`` alerts, and a
``no_data`` alert inhibits ``value`` alerts of the same patient and metric - one cause, one message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cloud.alerting._policy import InhibitRule

__all__ = ["AlertLabels", "SilenceWindow", "inhibitor", "matching_silence"]


@dataclass(frozen=True, slots=True)
class SilenceWindow:
    """A silence: ``patient``'s alerts (of ``rule`` and/or ``metric`` when given) send nothing until ``ends_at``."""

    id: int
    patient: str
    rule: str | None
    metric: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime

    def covers(self, labels: AlertLabels, now: dt.datetime) -> bool:
        """True when the silence is in force at ``now`` and matches the alert."""
        return (self.starts_at <= now < self.ends_at and self.patient == labels.patient
                and self.rule in (None, labels.rule) and self.metric in (None, labels.metric))


@dataclass(frozen=True, slots=True)
class AlertLabels:
    """What inhibition and silences match an alert on."""

    id: int
    patient: str
    rule: str
    metric: str
    kind: str
    severity: str

    def get(self, name: str) -> str:
        """The label called ``name``."""
        value: str = getattr(self, name)
        return value


def matching_silence(labels: AlertLabels, silences: Iterable[SilenceWindow], now: dt.datetime) -> SilenceWindow | None:
    """The first silence in force at ``now`` that covers the alert, or None."""
    return next((silence for silence in silences if silence.covers(labels, now)), None)


def inhibitor(labels: AlertLabels, active: Iterable[AlertLabels], rules: Iterable[InhibitRule]) -> AlertLabels | None:
    """The active alert that inhibits ``labels`` under ``rules``, or None. An alert never inhibits itself."""
    candidates = [other for other in active if other.id != labels.id]
    for rule in rules:
        if labels.kind != rule.target_kind:
            continue
        for other in candidates:
            if other.kind == rule.source_kind and all(
                    labels.get(name) and labels.get(name) == other.get(name) for name in rule.equal):
                return other
    return None

