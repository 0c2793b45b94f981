"""How a message reads: one subject and body for every channel that carries text."""

from __future__ import annotations

from cloud.alerting._messages import OutgoingMessage

__all__ = ["message_subject", "message_text"]

_SEVERITY_ORDER = ("critical", "urgent", "high", "warning", "info")


def _rank(severity: str) -> int:
    return _SEVERITY_ORDER.index(severity) if severity in _SEVERITY_ORDER else len(_SEVERITY_ORDER)


def message_subject(message: OutgoingMessage) -> str:
    """``[VitalBridge] urgent: patient p-7 - spo2 below 90 % for 3 min`` (or ``- 3 alerts``)."""
    worst = min((alert.severity for alert in message.alerts), key=_rank)
    repeat = all(alert.purpose == "repeat" for alert in message.alerts)
    lead = "reminder, " if repeat else ""
    what = message.alerts[0].message if len(message.alerts) == 1 else f"{len(message.alerts)} alerts"
    return f"[VitalBridge] {lead}{worst}: patient {message.patient} - {what}"


def message_text(message: OutgoingMessage) -> str:
    """The plain-text body: one paragraph per alert, then how to acknowledge."""
    lines = [f"Patient {message.patient}:", ""]
    for alert in message.alerts:
        extra = []
        if alert.episodes > 1:
            extra.append(f"episode {alert.episodes}")
        if alert.late:
            extra.append("found in data sent after an outage")
        if alert.purpose == "repeat":
            extra.append("not yet acknowledged")
        note = f" ({'; '.join(extra)})" if extra else ""
        lines.append(f"- [{alert.severity}] {alert.message}{note}")
        lines.append(f"  rule {alert.rule}, fired {alert.fired_at:%Y-%m-%d %H:%M:%S} UTC, now {alert.state},"
                     f" alert {alert.id}")
    lines += ["", "Acknowledge in the dashboard or with POST /api/v1/alerts/{id}/ack; an acknowledgement on any",
              "channel stops every reminder.", "", f"Message {message.key}"]
    return "\n".join(lines) + "\n"
