"""What the store needs from alerting to apply a change: the policy and who the recipients are."""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud.alerting._policy import AlertingPolicy
from cloud.alerting._recipients import PolicyRecipients, RecipientDirectory

__all__ = ["AlertingContext"]


@dataclass(frozen=True)
class AlertingContext:
    """The policy and the recipient directory (default: the recipients written in the policy)."""

    policy: AlertingPolicy = field(default_factory=AlertingPolicy)
    directory: RecipientDirectory | None = None

    def recipients(self) -> RecipientDirectory:
        """The directory to ask; the policy's own table unless another was given."""
        return self.directory if self.directory is not None else PolicyRecipients(self.policy)
