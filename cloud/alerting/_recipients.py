"""Who hears of a patient's alert in a given role: a small interface, so a registry can answer later."""

from __future__ import annotations

from typing import Protocol

from cloud.alerting._policy import AlertingPolicy, Recipient

__all__ = ["PolicyRecipients", "RecipientDirectory"]


class RecipientDirectory(Protocol):
    """Answers "who is ``role`` for ``patient``?" (e.g. doctor, care_team, family)."""

    def recipients(self, patient: str, role: str) -> list[Recipient]:
        """The addresses of ``patient``'s ``role``; empty when nobody holds it."""
        ...


class PolicyRecipients:
    """Recipients written in the alerting policy: the patient's own entry for a role, else the ``*`` entry."""

    def __init__(self, policy: AlertingPolicy) -> None:
        self._table = policy.recipients

    def recipients(self, patient: str, role: str) -> list[Recipient]:
        """The patient's addresses for ``role``, falling back to the ``*`` entry."""
        own = self._table.get(patient, {})
        if role in own:
            return list(own[role])
        return list(self._table.get("*", {}).get(role, []))
