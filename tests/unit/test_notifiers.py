"""Notifications end to end: store -> outbox -> notifier -> a real local SMTP server and a webhook receiver."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cloud.alerting import (
    AlertingContext,
    AlertingPolicy,
    EmailChannel,
    NotifierMetrics,
    NotifierSettings,
    NotifierWorker,
    SmtpSettings,
    WebhookChannel,
)
from cloud.rules import AlertChange
from cloud.store import NotificationQuery, Store, open_store
from tests.receivers import Mailbox, WebhookReceiver, smtp_server, verify_signature, webhook_receiver
from vitalbridge.stack import free_port

S = 10**9
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
E0 = int(T0.timestamp()) * S
SECRET = b"test-secret-0123456789"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


def _policy(url: str) -> AlertingPolicy:
    return AlertingPolicy.model_validate({
        "steps": [{"after_min": 0, "notify": ["doctor"]}],
        "repeat_min": {"default": 10}, "ack_timeout_min": None, "group_window_s": 5,
        "recipients": {"*": {"doctor": ["dr@example.org", url]}},
    })


def _change(rule: str = "spo2_low", metric: str = "spo2", patient: str = "p1") -> AlertChange:
    return AlertChange(rule=rule, patient=patient, metric=metric, severity="urgent", episode_start_ns=E0,
                       fired_ns=E0 + 60 * S, last_ns=E0 + 90 * S, worst_value=85.0, threshold=90.0,
                       message=f"{metric} below 90 % for 1 min", state="open")


@pytest.fixture
def setup(tmp_path: Path, mailbox: Mailbox,
          receiver: WebhookReceiver) -> Iterator[tuple[Store, _Clock, Mailbox, WebhookReceiver, dict[str, Any]]]:
    store = open_store(f"sqlite:///{tmp_path / 'n.db'}", AlertingContext(_policy(receiver.url)))
    clock = _Clock()
    channels: dict[str, Any] = {
        "email": EmailChannel(SmtpSettings(host="127.0.0.1", port=mailbox.port, sender="alerts@vitalbridge.test")),
        "webhook": WebhookChannel(SECRET, clock=lambda: clock().timestamp()),
    }
    try:
        yield store, clock, mailbox, receiver, channels
    finally:
        store.close()


def _worker(store: Store, clock: _Clock, channels: dict[str, Any], registry: CollectorRegistry | None = None,
            outbox: Any = None) -> NotifierWorker:
    return NotifierWorker(outbox or store, channels, clock=clock, group_window=dt.timedelta(seconds=5),
                          settings=NotifierSettings(lease_s=60, retry_initial_s=10, max_attempts=3),
                          metrics=NotifierMetrics(registry) if registry is not None else None)


async def test_alerts_that_fire_together_go_as_one_email_and_one_signed_webhook(setup: Any) -> None:
    store, clock, mailbox, receiver, channels = setup
    store.apply_alert_changes([_change(), _change("hr_high", "heart_rate")], at=clock())
    worker = _worker(store, clock, channels)
    assert await worker.run_once() == 0  # the grouping window is still open
    clock.advance(seconds=6)
    assert await worker.run_once() == 2
    assert await worker.run_once() == 0
    [mail] = mailbox.messages
    assert mail["To"] == "dr@example.org" and mail["Subject"] == "[VitalBridge] urgent: patient p1 - 2 alerts"
    text = mail.get_payload()
    assert "spo2 below 90 % for 1 min" in text and "heart_rate below 90 % for 1 min" in text
    [(headers, body)] = receiver.requests
    assert verify_signature(SECRET, headers, body)
    document = json.loads(body)
    assert headers["idempotency-key"] == document["idempotency_key"]
    assert mail["X-VitalBridge-Idempotency-Key"] not in (None, document["idempotency_key"])  # one key per message
    assert sorted(a["rule"] for a in document["alerts"]) == ["hr_high", "spo2_low"]
    assert [d.delivery.status for d in store.deliveries()] == ["sent", "sent"]


class _CrashAfterSend:
    """The outbox of a worker that dies between sending and marking: the first mark never happens."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def mark_sent(self, delivery_id: int, at: dt.datetime) -> None:
        raise RuntimeError("the process died before it could record the send")


async def test_a_crash_between_send_and_mark_repeats_the_send_with_the_same_key_and_loses_none(setup: Any) -> None:
    store, clock, mailbox, receiver, channels = setup
    store.apply_alert_changes([_change()], at=clock())
    clock.advance(seconds=6)
    assert await _worker(store, clock, channels, outbox=_CrashAfterSend(store)).run_once() == 2
    assert (len(mailbox.messages), len(receiver.requests)) == (1, 1)
    restarted = _worker(store, clock, channels)
    assert await restarted.run_once() == 0  # the dead worker's lease still holds
    clock.advance(seconds=61)
    await restarted.run_once()
    clock.advance(hours=1)
    store.acknowledge(store.alerts()[0].id, "dr.house", clock())
    for _ in range(3):
        clock.advance(minutes=30)
        store.tick_alerts(clock())
        await restarted.run_once()
    # Each recipient got the message; any repeat carries the same key, so the receiver can drop it.
    assert len({m["Message-ID"] for m in mailbox.messages}) == 1
    assert len({headers["idempotency-key"] for headers, _ in receiver.requests}) == 1
    assert (len(mailbox.messages), len(receiver.requests)) == (2, 2)  # each sent again once, none lost
    assert store.outbox_counts() == {"pending": 0, "sent": 2, "failed": 0, "cancelled": 0, "queued": 0}


async def test_failures_are_retried_with_backoff_and_visible(setup: Any) -> None:
    store, clock, _mailbox, receiver, channels = setup
    receiver.statuses = [503, 500]
    registry = CollectorRegistry()
    store.apply_alert_changes([_change()], at=clock())
    clock.advance(seconds=6)
    worker = _worker(store, clock, channels, registry)
    assert await worker.run_once() == 1  # the email went; the webhook got a 503
    [webhook] = store.deliveries(NotificationQuery(status="pending"))
    assert webhook.delivery.attempts == 1 and webhook.delivery.last_error.endswith("HTTP 503 ok")
    wait = webhook.delivery.next_attempt_at - clock()
    assert dt.timedelta(seconds=5) <= wait <= dt.timedelta(seconds=15)  # 10 s, jittered by half either way
    assert await worker.run_once() == 0  # not due yet
    clock.advance(seconds=16)
    assert await worker.run_once() == 0  # 500
    clock.advance(seconds=31)
    assert await worker.run_once() == 1
    assert len(receiver.requests) == 3 and len({h["idempotency-key"] for h, _ in receiver.requests}) == 1
    [done] = [log for log in store.deliveries() if log.delivery.channel == "webhook"]
    assert (done.delivery.status, done.delivery.attempts) == ("sent", 3)
    assert registry.get_sample_value("vb_notification_failures_total",
                                     {"channel": "webhook", "kind": "transient"}) == 2
    assert registry.get_sample_value("vb_notifications_sent_total", {"channel": "email"}) == 1
    assert registry.get_sample_value("vb_notification_deliveries", {"status": "sent"}) == 2


async def test_a_permanent_refusal_is_given_up_at_once_and_an_unreachable_server_is_retried(
        setup: Any) -> None:
    store, clock, _mailbox, receiver, channels = setup
    receiver.statuses = [400]
    channels["email"] = EmailChannel(SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=5))
    store.apply_alert_changes([_change()], at=clock())
    clock.advance(seconds=6)
    assert await _worker(store, clock, channels).run_once() == 0
    by_channel = {log.delivery.channel: log.delivery for log in store.deliveries()}
    assert by_channel["webhook"].status == "failed" and "HTTP 400" in by_channel["webhook"].last_error
    assert by_channel["email"].status == "pending" and "SMTP 127.0.0.1" in by_channel["email"].last_error
    assert {i.status for i in store.notification_items(1) if i.channel == "webhook"} == {"failed"}


async def test_a_channel_that_is_not_configured_fails_the_delivery_visibly(setup: Any) -> None:
    store, clock, _mailbox, _receiver, channels = setup
    store.apply_alert_changes([_change()], at=clock())
    clock.advance(seconds=6)
    await _worker(store, clock, {"webhook": channels["webhook"]}).run_once()
    [email_delivery] = [log.delivery for log in store.deliveries() if log.delivery.channel == "email"]
    assert (email_delivery.status, email_delivery.last_error) == ("failed", "no email channel is configured")
