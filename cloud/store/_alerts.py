"""Alert state changes: the one place that changes alert rows, through the lifecycle of ``cloud.alerting``.

Rule changes, clinicians' acknowledgements and resolutions, and the clock each become a lifecycle
event; the lifecycle (pure) says the alert's new state and its effects, and this module writes
them in the caller's transaction: the alert row, its transitions (append-only) and its outbox
items. So a notification exists exactly when the change that caused it was committed.

One alert stands for a (patient, rule) until it closes: a rule change finds the alert of its
(rule, patient) that is not closed; an older episode than the alert's current one is a replay and
changes nothing. Changes found by re-evaluating late data join the alert whose episode overlaps
them and open a new one, marked late, only where none does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cloud.alerting._context import AlertingContext
from cloud.alerting._lifecycle import (
    ACTIVE_STATES,
    Acknowledge,
    AlertLifecycle,
    AlertState,
    Event,
    Notify,
    Resolution,
    Resolve,
    RuleSignal,
    StopNotifications,
    Tick,
    Transition,
    advance,
)
from cloud.alerting._suppress import AlertLabels, SilenceWindow, inhibitor, matching_silence
from cloud.rules import AlertChange
from cloud.store._alerting_models import AlertTransition, NotificationDelivery, NotificationItem, SilenceRecord
from cloud.store._models import AlertRecord

__all__ = ["acknowledge_alert", "apply_alert_changes", "resolve_alert", "tick_alerts"]

_TICKED = ("pending", "firing", "acknowledged", "resolved")


def apply_alert_changes(session: Session, changes: Sequence[AlertChange], at: dt.datetime,
                        context: AlertingContext) -> list[AlertRecord]:
    """Apply rule ``changes`` at ``at`` inside ``session`` (the caller commits); returns the alerts newly created."""
    opened: list[AlertRecord] = []
    for change in changes:
        apply = _apply_late if change.late else _apply_live
        record = apply(session, change, at, context)
        if record is not None:
            opened.append(record)
        session.flush()  # later changes of this batch must see this one
    return opened


def _apply_live(session: Session, change: AlertChange, at: dt.datetime,
                context: AlertingContext) -> AlertRecord | None:
    record = _current(session, change.rule, change.patient)
    if record is None:
        if _closed_covering(session, change):
            return None  # a replay of an episode whose alert has closed
        return _create(session, change, at, context, late=False)
    if change.episode_start_ns < record.episode_ns:
        return None  # a replay of an earlier episode of this alert
    # A later start that falls inside the stored episode is the same episode seen from later data: when a
    # patient's batches reach several workers out of order, the late path can find an episode's start
    # before the live state does.
    new_episode = change.episode_start_ns > record.episode_ns and not (
        record.state in ACTIVE_STATES and change.episode_start_ns <= record.last_ns)
    if new_episode or _fresh(record, change):
        _copy(record, change, new_episode=new_episode)
    _advance(session, record, RuleSignal(change), at, context)
    return None


def _fresh(record: AlertRecord, change: AlertChange) -> bool:
    if record.state in ("resolved", "closed") and change.state != "resolved":
        return False  # a replay of data from before the episode ended
    return not (change.state != "resolved" and change.last_ns < record.last_ns)  # not an older state


def _apply_late(session: Session, change: AlertChange, at: dt.datetime,
                context: AlertingContext) -> AlertRecord | None:
    record = _overlapping(session, change)
    if record is None and change.state != "resolved":
        # An episode still under way in the backfill: the (patient, rule)'s active alert takes it, if any.
        current = _current(session, change.rule, change.patient)
        record = current if current is not None and current.state in ACTIVE_STATES else None
    if record is None:
        return _create(session, change, at, context, late=True)
    _merge_late(record, change)
    # Resolve only an episode nothing newer has touched: a live episode that went on stays open.
    if (change.state == "resolved" and record.state in ACTIVE_STATES and change.resolved_ns is not None
            and record.last_ns <= change.resolved_ns):
        record.resolved_ns = change.resolved_ns
        signal = dataclasses.replace(change, episode_start_ns=record.episode_ns, late=False)
        _advance(session, record, RuleSignal(signal), at, context)
    return None


def _create(session: Session, change: AlertChange, at: dt.datetime, context: AlertingContext, *,
            late: bool) -> AlertRecord:
    record = AlertRecord(rule=change.rule, patient=change.patient, episode_start_ns=change.episode_start_ns,
                         episode_ns=change.episode_start_ns, late=late, last_ns=change.last_ns,
                         kind=context.policy.kind_of(change.rule, getattr(change, "kind", None)),
                         severity=change.severity, state="pending", episodes=0, escalation_step=0, changed_at=at)
    _copy(record, change, new_episode=True)
    session.add(record)
    session.flush()  # the transitions and outbox items need its id
    lifecycle, effects = advance(None, RuleSignal(change), at, context.policy)
    assert lifecycle is not None
    _store(record, lifecycle)
    _apply_effects(session, record, effects, at, context)
    return record


def _advance(session: Session, record: AlertRecord, event: Event, at: dt.datetime, context: AlertingContext) -> None:
    lifecycle, effects = advance(_lifecycle(record, at), event, at, context.policy)
    assert lifecycle is not None
    _store(record, lifecycle)
    _apply_effects(session, record, effects, at, context)


def _lifecycle(record: AlertRecord, at: dt.datetime) -> AlertLifecycle:
    return AlertLifecycle(
        state=cast(AlertState, record.state), severity=record.severity, episode_ns=record.episode_ns,
        episodes=record.episodes, changed_at=record.changed_at or at, firing_since=record.firing_since,
        escalation_step=record.escalation_step, last_notified_at=record.last_notified_at,
        acknowledged_at=record.acknowledged_at, acknowledged_by=record.acknowledged_by,
        resolved_at=record.resolved_at, resolved_by=record.resolved_by, resolution=record.resolution,
        manual_episode_ns=record.manual_episode_ns,
    )


def _store(record: AlertRecord, lifecycle: AlertLifecycle) -> None:
    for name in ("state", "severity", "episode_ns", "episodes", "changed_at", "firing_since", "escalation_step",
                 "last_notified_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
                 "resolution", "manual_episode_ns"):
        value = getattr(lifecycle, name)
        if getattr(record, name) != value:
            setattr(record, name, value)


# -- effects -----------------------------------------------------------------------------------------
def _apply_effects(session: Session, record: AlertRecord, effects: Sequence[object], at: dt.datetime,
                   context: AlertingContext) -> None:
    for effect in effects:
        if isinstance(effect, Transition):
            session.add(AlertTransition(alert_id=record.id, patient=record.patient, rule=record.rule,
                                        from_state=effect.from_state, to_state=effect.to_state,
                                        actor=effect.actor[:128], reason=effect.reason, at=effect.at))
        elif isinstance(effect, Notify):
            _queue(session, record, effect, at, context)
        elif isinstance(effect, StopNotifications):
            _cancel(session, record.id, f"{record.state} before it was sent")


def _labels(record: AlertRecord) -> AlertLabels:
    return AlertLabels(record.id, record.patient, record.rule, record.metric, record.kind, record.severity)


def _suppressed_because(session: Session, record: AlertRecord, at: dt.datetime, context: AlertingContext) -> str:
    labels = _labels(record)
    silence = matching_silence(labels, _silences(session, record.patient, at), at)
    if silence is not None:
        return f"silenced (silence {silence.id} until {silence.ends_at.isoformat()})"
    rules = context.policy.inhibit
    sources = {rule.source_kind for rule in rules if rule.target_kind == record.kind}
    if sources:
        active = session.scalars(select(AlertRecord).where(
            AlertRecord.kind.in_(sorted(sources)), AlertRecord.state.in_(("firing", "acknowledged")),
        ))
        source = inhibitor(labels, [_labels(other) for other in active], rules)
        if source is not None:
            return f"inhibited by alert {source.id} ({source.rule})"
    return ""


def _silences(session: Session, patient: str, at: dt.datetime) -> list[SilenceWindow]:
    rows = session.scalars(select(SilenceRecord).where(
        SilenceRecord.patient == patient, SilenceRecord.deleted_at.is_(None), SilenceRecord.ends_at > at,
        SilenceRecord.starts_at <= at,
    ).order_by(SilenceRecord.id))
    return [SilenceWindow(row.id, row.patient, row.rule, row.metric, row.starts_at, row.ends_at) for row in rows]


def _queue(session: Session, record: AlertRecord, notify: Notify, at: dt.datetime, context: AlertingContext) -> None:
    suppressed = _suppressed_because(session, record, at, context)
    directory = context.recipients()
    for role in notify.roles:
        recipients = directory.recipients(record.patient, role)
        if not recipients:
            session.add(NotificationItem(alert_id=record.id, patient=record.patient, role=role, channel="none",
                                         address="", purpose=notify.purpose, step=notify.step, created_at=at,
                                         status="suppressed", reason=f"nobody is {role} for this patient"))
            continue
        for recipient in recipients:
            session.add(NotificationItem(alert_id=record.id, patient=record.patient, role=role,
                                         channel=recipient.channel, address=recipient.address,
                                         purpose=notify.purpose, step=notify.step, created_at=at,
                                         status="suppressed" if suppressed else "queued", reason=suppressed))


def _cancel(session: Session, alert_id: int, reason: str) -> None:
    """Cancel the alert's items not yet sent, and deliveries left with nothing to say."""
    unsent = select(NotificationDelivery.id).where(NotificationDelivery.status == "pending")
    session.execute(
        update(NotificationItem)
        .where(NotificationItem.alert_id == alert_id, NotificationItem.status.in_(("queued", "grouped")),
               (NotificationItem.delivery_id.is_(None)) | NotificationItem.delivery_id.in_(unsent))
        .values(status="cancelled", reason=reason)
    )
    live_items = select(NotificationItem.delivery_id).where(NotificationItem.status == "grouped",
                                                            NotificationItem.delivery_id.is_not(None))
    session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.status == "pending", NotificationDelivery.id.not_in(live_items))
        .values(status="cancelled", last_error="")
    )


# -- lookups -----------------------------------------------------------------------------------------
def _current(session: Session, rule: str, patient: str) -> AlertRecord | None:
    return session.scalar(
        select(AlertRecord).where(AlertRecord.rule == rule, AlertRecord.patient == patient,
                                  AlertRecord.state != "closed")
        # A late episode may have its own (resolved) alert beside the live one: the newest episode leads.
        .order_by(AlertRecord.episode_ns.desc(), AlertRecord.id.desc()).limit(1).with_for_update()
    )


def _closed_covering(session: Session, change: AlertChange) -> bool:
    found = session.scalar(
        select(AlertRecord.id).where(
            AlertRecord.rule == change.rule, AlertRecord.patient == change.patient, AlertRecord.state == "closed",
            AlertRecord.episode_start_ns <= change.episode_start_ns, AlertRecord.episode_ns >= change.episode_start_ns,
        ).limit(1)
    )
    return found is not None


def _overlapping(session: Session, change: AlertChange) -> AlertRecord | None:
    end = change.resolved_ns if change.resolved_ns is not None else change.last_ns
    return session.scalar(
        select(AlertRecord).where(
            AlertRecord.rule == change.rule, AlertRecord.patient == change.patient,
            AlertRecord.episode_start_ns <= end,
            func.coalesce(AlertRecord.resolved_ns, AlertRecord.last_ns) >= change.episode_start_ns,
        ).order_by(AlertRecord.episode_start_ns).limit(1)
    )


def _copy(record: AlertRecord, change: AlertChange, *, new_episode: bool) -> None:
    record.metric = change.metric
    record.fired_ns = change.fired_ns
    record.last_ns = change.last_ns if new_episode else max(change.last_ns, record.last_ns or 0)
    record.worst_value = change.worst_value
    record.threshold = change.threshold
    record.message = change.message
    record.resolved_ns = change.resolved_ns
    _stamp_versions(record, change)


def _stamp_versions(record: AlertRecord, change: AlertChange) -> None:
    # The engine names the rule and settings that judged a change "<rule hash>@<settings version>".
    if change.rule_version:
        rule_version, _, settings_version = change.rule_version.partition("@")
        record.rule_version = rule_version[:64]
        record.settings_version = settings_version[:64] or None


def _merge_late(record: AlertRecord, change: AlertChange) -> None:
    # The late window saw part of this episode: widen it, never narrow it.
    if change.episode_start_ns < record.episode_start_ns:
        record.episode_start_ns = change.episode_start_ns
        record.fired_ns = min(record.fired_ns, change.fired_ns)
    if abs(change.worst_value - change.threshold) > abs(record.worst_value - record.threshold):
        record.worst_value = change.worst_value
    if change.last_ns - change.episode_start_ns >= record.last_ns - record.episode_start_ns:
        record.message = change.message
    record.last_ns = max(record.last_ns, change.last_ns)


# -- clinicians and the clock ---------------------------------------------------------------------------
def acknowledge_alert(session: Session, alert_id: int, by: str, at: dt.datetime,
                      context: AlertingContext) -> AlertRecord | None:
    """``by`` has seen the alert; None when there is none. Raises ``LifecycleError`` when it is only pending."""
    record = session.get(AlertRecord, alert_id, with_for_update=True)
    if record is None:
        return None
    _advance(session, record, Acknowledge(by), at, context)
    return record


def resolve_alert(session: Session, alert_id: int, by: str, reason: Resolution, at: dt.datetime,
                  context: AlertingContext) -> AlertRecord | None:
    """``by`` ends the alert for ``reason``; None when there is none. Raises ``LifecycleError`` when it has ended."""
    record = session.get(AlertRecord, alert_id, with_for_update=True)
    if record is None:
        return None
    _advance(session, record, Resolve(by, reason), at, context)
    return record


def tick_alerts(session: Session, at: dt.datetime, context: AlertingContext) -> int:
    """Move every alert that is not closed on to ``at`` (escalation, repeats, timeouts, closing); returns
    how many transitions or notifications that made."""
    made = 0
    records = list(session.scalars(select(AlertRecord).where(AlertRecord.state.in_(_TICKED))
                                   .order_by(AlertRecord.id).with_for_update()))
    for record in records:
        lifecycle, effects = advance(_lifecycle(record, at), Tick(), at, context.policy)
        if not effects:
            continue
        assert lifecycle is not None
        _store(record, lifecycle)
        _apply_effects(session, record, effects, at, context)
        made += len(effects)
    return made
