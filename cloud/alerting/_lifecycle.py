"""The alert lifecycle (pure): an alert's state, one event and the time in; its new state and effects out.

::

                 rule "pending"            rule "open"
      (none) ----------------> PENDING -----------------> FIRING <-------------------------+
         |                        |                        |  ^                            |
         |  rule "open"           | expiry (never fired)   |  | acknowledgement timeout    |
         +------------------------|------------------------+  |                            |
                                  v                 ack    v  |                            |
                                CLOSED          ACKNOWLEDGED -+                            |
                                  ^                  |                                     |
                                  |   rule "resolved" or a clinician's resolve (reason)    |
                                  |                  v                                     |
                                  +------------- RESOLVED --- a new episode of the rule ---+
                                    quiet period

One alert stands for a (patient, rule) from its first episode until it closes: a new episode of
the same rule before then reopens it (``episodes`` counts them). Escalation runs on the clock
while the alert fires unacknowledged: step 0 at once, later steps after their delays, then a
repeat every severity-dependent interval. An acknowledgement (from any channel) stops all of it;
when it lapses (``ack_timeout``) the alert fires again from step 0.

Nothing here reads a clock or does I/O: the store applies the effects, and ``now`` comes from
the caller.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cloud.alerting._policy import AlertingPolicy
from cloud.rules import AlertChange

__all__ = [
    "ACTIVE_STATES",
    "RESOLUTIONS",
    "STATES",
    "Acknowledge",
    "AlertLifecycle",
    "Effect",
    "Event",
    "LifecycleError",
    "Notify",
    "Resolve",
    "RuleSignal",
    "StopNotifications",
    "Tick",
    "Transition",
    "advance",
]

AlertState = Literal["pending", "firing", "acknowledged", "resolved", "closed"]
STATES: tuple[AlertState, ...] = ("pending", "firing", "acknowledged", "resolved", "closed")
ACTIVE_STATES: frozenset[str] = frozenset({"pending", "firing", "acknowledged"})
"""States of an alert whose episode is still under way."""
Resolution = Literal["actioned", "false_alarm", "device_problem"]
RESOLUTIONS: tuple[Resolution, ...] = ("actioned", "false_alarm", "device_problem")


class LifecycleError(ValueError):
    """An event the alert's state does not allow (e.g. resolving a resolved alert); the message says why."""


@dataclass(frozen=True, slots=True)
class AlertLifecycle:
    """What the lifecycle knows of one alert; the store keeps it in the alert's row."""

    state: AlertState
    severity: str
    episode_ns: int
    """Start (Unix ns, event time) of the alert's current episode."""
    episodes: int
    """Episodes that fired under this alert (1 for the first; more are repeats)."""
    changed_at: dt.datetime
    firing_since: dt.datetime | None = None
    """Start of the current escalation: when the alert began to fire (or fired again)."""
    escalation_step: int = 0
    """Escalation steps notified since ``firing_since``."""
    last_notified_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    manual_episode_ns: int | None = None
    """The episode a clinician resolved by hand: the rule's further news of it changes nothing."""


@dataclass(frozen=True, slots=True)
class RuleSignal:
    """A rule's change for the alert's (patient, rule): pending, open or resolved."""

    change: AlertChange


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """A clinician has seen the alert."""

    by: str


@dataclass(frozen=True, slots=True)
class Resolve:
    """A clinician ends the alert, saying why."""

    by: str
    reason: Resolution


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock moved on: escalation, repeats, acknowledgement timeout, closing."""


Event = RuleSignal | Acknowledge | Resolve | Tick


@dataclass(frozen=True, slots=True)
class Transition:
    """The alert moved from ``from_state`` (None: it was created) to ``to_state``; who or what moved it, why."""

    from_state: AlertState | None
    to_state: AlertState
    actor: str
    reason: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell ``roles`` about the alert. ``purpose``: fire, escalate or repeat; ``step`` is the escalation step."""

    roles: tuple[str, ...]
    purpose: Literal["fire", "escalate", "repeat"]
    step: int


@dataclass(frozen=True, slots=True)
class StopNotifications:
    """Cancel whatever is queued for the alert and not yet sent (acknowledged or resolved)."""


Effect = Transition | Notify | StopNotifications

CLOCK = "clock"


def advance(alert: AlertLifecycle | None, event: Event, now: dt.datetime,
            policy: AlertingPolicy) -> tuple[AlertLifecycle | None, list[Effect]]:
    """Apply ``event`` at ``now`` to ``alert`` (None: no alert yet). Raises :class:`LifecycleError` when
    a clinician's event does not fit the state; rule signals and ticks never raise."""
    effects: list[Effect] = []
    if isinstance(event, RuleSignal):
        if alert is None or alert.state == "closed":
            return _open(event.change, now, policy, effects), effects
        return _signal(alert, event.change, now, policy, effects), effects
    if alert is None:
        raise LifecycleError("no such alert")
    if isinstance(event, Acknowledge):
        return _acknowledge(alert, event.by, now, effects), effects
    if isinstance(event, Resolve):
        if alert.state not in ACTIVE_STATES:
            raise LifecycleError(f"the alert is already {alert.state}")
        return _resolve(alert, event.by, event.reason, now, effects, manual=True), effects
    return _tick(alert, now, policy, effects), effects


def _move(alert: AlertLifecycle, to: AlertState, actor: str, reason: str, now: dt.datetime,
          effects: list[Effect], **changes: object) -> AlertLifecycle:
    effects.append(Transition(alert.state, to, actor, reason, now))
    return dataclasses.replace(alert, state=to, changed_at=now, **changes)  # type: ignore[arg-type]


def _open(change: AlertChange, now: dt.datetime, policy: AlertingPolicy,
          effects: list[Effect]) -> AlertLifecycle:
    actor = f"rule:{change.rule}"
    if change.state == "pending":
        effects.append(Transition(None, "pending", actor, "condition met; waiting for its duration", now))
        return AlertLifecycle(state="pending", severity=change.severity, episode_ns=change.episode_start_ns,
                              episodes=0, changed_at=now)
    effects.append(Transition(None, "firing", actor, "rule fired", now))
    alert = AlertLifecycle(state="firing", severity=change.severity, episode_ns=change.episode_start_ns,
                           episodes=1, changed_at=now, firing_since=now)
    alert = _escalate(alert, now, policy, effects)
    if change.state == "resolved":
        # The episode fired and ended within one evaluation (e.g. data sent after an outage): it is
        # told once, then recorded as resolved.
        alert = _resolve(alert, actor, "cleared", now, effects, manual=False)
    return alert


def _fire(alert: AlertLifecycle, change: AlertChange, reason: str, now: dt.datetime, policy: AlertingPolicy,
          effects: list[Effect], *, new_episode: bool) -> AlertLifecycle:
    alert = _move(alert, "firing", f"rule:{change.rule}", reason, now, effects, severity=change.severity,
                  episode_ns=change.episode_start_ns, episodes=alert.episodes + 1 if new_episode or
                  alert.state == "pending" else alert.episodes,
                  firing_since=now, escalation_step=0, last_notified_at=None, acknowledged_at=None,
                  acknowledged_by=None, resolved_at=None, resolved_by=None, resolution=None)
    alert = _escalate(alert, now, policy, effects)
    if change.state == "resolved":
        alert = _resolve(alert, f"rule:{change.rule}", "cleared", now, effects, manual=False)
    return alert


def _signal(alert: AlertLifecycle, change: AlertChange, now: dt.datetime, policy: AlertingPolicy,
            effects: list[Effect]) -> AlertLifecycle:
    actor = f"rule:{change.rule}"
    start = change.episode_start_ns
    if start < alert.episode_ns:
        return alert  # a replay of an older episode: already told
    if start == alert.episode_ns:
        if alert.manual_episode_ns == start or alert.state in ("resolved", "closed"):
            return alert  # the episode was ended (by hand or by the rule): a replay changes nothing
        if alert.state == "pending":
            if change.state == "pending":
                return alert
            return _fire(alert, change, "held for its duration", now, policy, effects, new_episode=False)
        # firing or acknowledged
        if change.state == "resolved":
            return _resolve(alert, actor, "cleared", now, effects, manual=False)
        return dataclasses.replace(alert, severity=change.severity) if change.state == "open" else alert
    # A newer episode of the same rule.
    if alert.state == "pending":
        # The pending episode lapsed without firing; the new one takes its place.
        if change.state == "pending":
            return dataclasses.replace(alert, episode_ns=start, changed_at=now)
        return _fire(dataclasses.replace(alert, episode_ns=start), change, "held for its duration", now, policy,
                     effects, new_episode=False)
    if alert.state in ("firing", "acknowledged"):
        # The rule began a new episode without ending the last one in our sight: the same alert goes on.
        alert = dataclasses.replace(alert, episode_ns=start, episodes=alert.episodes + 1, severity=change.severity)
        if change.state == "resolved":
            return _resolve(alert, actor, "cleared", now, effects, manual=False)
        return alert
    # resolved: the condition is back before the alert closed - a repeat of the same alert.
    if change.state == "pending":
        return _move(alert, "pending", actor, "condition met again; waiting for its duration", now, effects,
                     episode_ns=start, severity=change.severity, acknowledged_at=None, acknowledged_by=None,
                     resolved_at=None, resolved_by=None, resolution=None)
    return _fire(alert, change, f"fired again (episode {alert.episodes + 1})", now, policy, effects, new_episode=True)


def _acknowledge(alert: AlertLifecycle, by: str, now: dt.datetime, effects: list[Effect]) -> AlertLifecycle:
    if alert.state == "pending":
        raise LifecycleError("the alert is pending: it has not fired yet")
    if alert.state == "acknowledged":
        return alert  # the first acknowledgement stands
    if alert.state == "firing":
        effects.append(StopNotifications())
        return _move(alert, "acknowledged", by, "acknowledged", now, effects, acknowledged_at=now,
                     acknowledged_by=by)
    if alert.acknowledged_at is not None:
        return alert
    # Seen after it ended: who saw it and when is kept; the state stays.
    effects.append(Transition(alert.state, alert.state, by, "acknowledged", now))
    return dataclasses.replace(alert, acknowledged_at=now, acknowledged_by=by)


def _resolve(alert: AlertLifecycle, by: str, reason: str, now: dt.datetime, effects: list[Effect], *,
             manual: bool) -> AlertLifecycle:
    if manual:
        # A clinician has dealt with it: nothing queued needs to go. (When the rule clears it, what
        # is queued still goes: the doctor should hear of an episode even if it is already over.)
        effects.append(StopNotifications())
    return _move(alert, "resolved", by, reason, now, effects, resolved_at=now, resolved_by=by, resolution=reason,
                 manual_episode_ns=alert.episode_ns if manual else alert.manual_episode_ns)


def _tick(alert: AlertLifecycle, now: dt.datetime, policy: AlertingPolicy, effects: list[Effect]) -> AlertLifecycle:
    if alert.state == "pending" and now >= alert.changed_at + policy.pending_expiry:
        return _move(alert, "closed", CLOCK, "never fired", now, effects)
    if alert.state == "resolved" and alert.resolved_at is not None and now >= alert.resolved_at + policy.close_after:
        return _move(alert, "closed", CLOCK, "quiet period over", now, effects)
    if alert.state == "acknowledged":
        timeout = policy.ack_timeout
        if timeout is None or alert.acknowledged_at is None or now < alert.acknowledged_at + timeout:
            return alert
        alert = _move(alert, "firing", CLOCK, "acknowledgement timed out", now, effects, firing_since=now,
                      escalation_step=0, last_notified_at=None)
    if alert.state == "firing":
        return _escalate(alert, now, policy, effects)
    return alert


def _escalate(alert: AlertLifecycle, now: dt.datetime, policy: AlertingPolicy,
              effects: list[Effect]) -> AlertLifecycle:
    if alert.firing_since is None:
        return alert  # an alert from before the lifecycle existed: it never escalates
    step = alert.escalation_step
    notified = False
    while step < len(policy.steps) and now >= alert.firing_since + policy.step_delay(step):
        effects.append(Notify(tuple(policy.steps[step].notify), "fire" if step == 0 else "escalate", step))
        step += 1
        notified = True
    if notified:
        return dataclasses.replace(alert, escalation_step=step, last_notified_at=now)
    every = policy.repeat_every(alert.severity)
    if step == 0 or every is None or alert.last_notified_at is None or now < alert.last_notified_at + every:
        return alert
    # Once per tick at most: a service that was down catches up with one repeat, not a burst.
    roles = tuple(dict.fromkeys(role for reached in policy.steps[:step] for role in reached.notify))
    effects.append(Notify(roles, "repeat", step - 1))
    return dataclasses.replace(alert, last_notified_at=now)
