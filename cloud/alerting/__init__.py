"""Alerting: the alert lifecycle (pure), the escalation policy, silences and inhibition, and the notifiers.

The store applies the lifecycle to alert rows (``cloud.store``); the notifier worker sends what the
outbox holds. Nothing here imports the store: it reaches it through :class:`Outbox`.
"""

from cloud.alerting._context import AlertingContext
from cloud.alerting._email import EmailChannel, SmtpSettings
from cloud.alerting._lifecycle import (
    ACTIVE_STATES,
    RESOLUTIONS,
    STATES,
    Acknowledge,
    AlertLifecycle,
    Effect,
    Event,
    LifecycleError,
    Notify,
    Resolve,
    RuleSignal,
    StopNotifications,
    Tick,
    Transition,
    advance,
)
from cloud.alerting._messages import AlertSummary, DeliveryError, Outbox, OutgoingMessage
from cloud.alerting._policy import (
    AlertingPolicy,
    EscalationStep,
    InhibitRule,
    PolicyError,
    Recipient,
    load_policy,
    parse_recipient,
)
from cloud.alerting._recipients import PolicyRecipients, RecipientDirectory
from cloud.alerting._suppress import AlertLabels, SilenceWindow, inhibitor, matching_silence
from cloud.alerting._text import message_subject, message_text
from cloud.alerting._webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, sign, webhook_body
from cloud.alerting._worker import AlertClock, Channel, NotifierMetrics, NotifierSettings, NotifierWorker

__all__ = [
    "ACTIVE_STATES",
    "RESOLUTIONS",
    "SIGNATURE_HEADER",
    "STATES",
    "TIMESTAMP_HEADER",
    "Acknowledge",
    "AlertClock",
    "AlertLabels",
    "AlertLifecycle",
    "AlertSummary",
    "AlertingContext",
    "AlertingPolicy",
    "Channel",
    "DeliveryError",
    "Effect",
    "EmailChannel",
    "EscalationStep",
    "Event",
    "InhibitRule",
    "LifecycleError",
    "NotifierMetrics",
    "NotifierSettings",
    "NotifierWorker",
    "Notify",
    "Outbox",
    "OutgoingMessage",
    "PolicyError",
    "PolicyRecipients",
    "Recipient",
    "RecipientDirectory",
    "Resolve",
    "RuleSignal",
    "SilenceWindow",
    "SmtpSettings",
    "StopNotifications",
    "Tick",
    "Transition",
    "WebhookChannel",
    "advance",
    "inhibitor",
    "load_policy",
    "matching_silence",
    "message_subject",
    "message_text",
    "parse_recipient",
    "sign",
    "webhook_body",
]
