"""Alert state changes: the one place that turns rule output into alert rows.

Live changes upsert the episode they name (``(rule, patient, episode_start_ns)``), so evaluating the
same data twice changes nothing and a replay never rolls an alert back. Changes found by
re-evaluating late data join the alert whose episode overlaps them (one episode, one alert) and
open a new one, marked late, only where none does.

A live change that names no stored episode also joins an overlapping one before it opens its own:
when a patient's batches reach several ingest workers out of order, the live state can start an
episode later than the late re-evaluation of the earlier batches found it, and both describe the
same episode.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.rules import AlertChange
from cloud.store._models import AlertRecord

__all__ = ["apply_alert_changes"]


def apply_alert_changes(session: Session, changes: Sequence[AlertChange]) -> list[AlertRecord]:
    """Apply ``changes`` inside ``session`` (the caller commits); returns the alerts newly opened."""
    opened: list[AlertRecord] = []
    for change in changes:
        if change.late:
            record = _overlapping(session, change)
        else:
            record = _episode(session, change) or _overlapping(session, change)
        if record is None:
            record = AlertRecord(rule=change.rule, patient=change.patient, episode_start_ns=change.episode_start_ns,
                                 late=change.late, last_ns=change.last_ns)
            session.add(record)
            opened.append(record)
            _copy(record, change)
        elif change.late:
            _merge_late(record, change)
        elif record.episode_start_ns != change.episode_start_ns:
            _merge_live(record, change)
        elif record.state == "resolved" and change.state == "open":
            continue  # a replay of data from before the episode ended
        elif change.state == "open" and change.last_ns < record.last_ns:
            continue  # a replay of an older state of the episode: keep the newer one
        else:
            _copy(record, change)
        session.flush()  # later changes of this batch must see this one
    return opened


def _episode(session: Session, change: AlertChange) -> AlertRecord | None:
    return session.scalar(select(AlertRecord).where(
        AlertRecord.rule == change.rule, AlertRecord.patient == change.patient,
        AlertRecord.episode_start_ns == change.episode_start_ns,
    ))


def _overlapping(session: Session, change: AlertChange) -> AlertRecord | None:
    end = change.resolved_ns if change.resolved_ns is not None else change.last_ns
    return session.scalar(
        select(AlertRecord).where(
            AlertRecord.rule == change.rule, AlertRecord.patient == change.patient,
            AlertRecord.episode_start_ns <= end,
            func.coalesce(AlertRecord.resolved_ns, AlertRecord.last_ns) >= change.episode_start_ns,
        ).order_by(AlertRecord.episode_start_ns).limit(1)
    )


def _copy(record: AlertRecord, change: AlertChange) -> None:
    record.metric = change.metric
    record.severity = change.severity
    record.fired_ns = change.fired_ns
    record.last_ns = max(change.last_ns, record.last_ns or 0)
    record.worst_value = change.worst_value
    record.threshold = change.threshold
    record.message = change.message
    record.state = change.state
    record.resolved_ns = change.resolved_ns


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
    # Resolve only an episode nothing newer has touched: a live episode that went on stays open.
    if (change.state == "resolved" and record.state == "open" and change.resolved_ns is not None
            and record.last_ns <= change.resolved_ns):
        record.state = "resolved"
        record.resolved_ns = change.resolved_ns


def _merge_live(record: AlertRecord, change: AlertChange) -> None:
    # The live state met an episode already stored from another view of it: one episode, one alert.
    # Its start is the earliest either saw; its state is the live one, which has seen the newest data.
    record.episode_start_ns = min(record.episode_start_ns, change.episode_start_ns)
    record.fired_ns = min(record.fired_ns, change.fired_ns)
    if abs(change.worst_value - change.threshold) > abs(record.worst_value - record.threshold):
        record.worst_value = change.worst_value
    record.late = False  # seen live too: not only in backfilled data
    if change.last_ns < record.last_ns and change.state == "open":
        return  # an older view of the episode than the one stored
    record.last_ns = max(record.last_ns, change.last_ns)
    record.message = change.message
    record.state = change.state
    record.resolved_ns = change.resolved_ns
