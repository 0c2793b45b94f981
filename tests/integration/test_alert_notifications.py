"""A hypoxia episode through the real path: gateway spool and publisher -> Mosquitto -> ingest -> influxd and the
store -> alert lifecycle -> outbox -> a real SMTP server and a webhook receiver. One email, one webhook call;
one acknowledgement, then nothing more however long the clock runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth_helpers import clinician
from tests.integration._gateway import TestGateway, running_gateway, spo2_batch
from tests.integration.helpers import wait_for
from tests.receivers import smtp_server, verify_signature, webhook_receiver
from vitalbridge.stack import free_port

pytestmark = pytest.mark.integration

S = 10**9
SECRET = "integration-secret-0123456789"


async def test_a_hypoxia_episode_sends_one_email_and_one_webhook_and_an_ack_silences_it(
        stack: Any, tmp_path: Path, unique_name: Any) -> None:
    from cloud.service import CloudConfig, CloudService

    offset = [0]  # the service's clock, which the test moves on after the acknowledgement
    with smtp_server() as mailbox, webhook_receiver() as receiver:
        policy = {
            "steps": [{"after_min": 0, "notify": ["doctor"]}, {"after_min": 15, "notify": ["care_team"]}],
            "repeat_min": {"high": 5}, "ack_timeout_min": None, "group_window_s": 1,
            "recipients": {"*": {"doctor": ["dr.house@example.org", receiver.url],
                                 "care_team": ["team@example.org"]}},
        }
        config = CloudConfig(
            mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=unique_name("vbalerts"),
            database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=free_port(),
            client_id=unique_name("ingest-"), shared_group=unique_name("group-"), max_wait_ms=20.0,
            alerting=policy, smtp_host="127.0.0.1",
            smtp_port=mailbox.port, smtp_from="alerts@vitalbridge.test", webhook_secret=SECRET,
            alert_tick_s=0.2, notify_poll_s=0.1,
            registry="off",  # the registry is tests/integration/test_registry.py's
        )
        service = CloudService(config, clock=lambda: time.time_ns() + offset[0])
        await service.start()
        try:
            gateway = TestGateway(unique_name("gw"), stack.mqtt_url, tmp_path / "spool.db")
            start = time.time_ns() - 300 * S
            async with running_gateway(gateway):
                # Five live batches, 30 s each: normal, then a drop below 90 % that lasts.
                series = [96.0] * 30 + [88.0, 86.0, 85.0] * 40
                for index in range(5):
                    gateway.add(spo2_batch(gateway.gateway, "hypoxic", start + index * 30 * S,
                                           series[index * 30:(index + 1) * 30]))
                assert await gateway.confirmed_all()
            await wait_for(lambda: len(mailbox.messages) == 1 and len(receiver.requests) == 1, timeout_s=60)
            assert service.security is not None
            doctor = clinician(service.security, ["hypoxic"], username="dr.house")
            async with httpx.AsyncClient(base_url=service.api_url, headers=doctor) as client:
                [alert] = (await client.get("/api/v1/alerts")).json()
                assert (alert["patient"], alert["rule"], alert["state"], alert["worst_value"]) == (
                    "hypoxic", "spo2_low_sustained", "firing", 85.0)
                [mail] = mailbox.messages
                assert mail["To"] == "dr.house@example.org" and "patient hypoxic" in mail["Subject"]
                [(headers, body)] = receiver.requests
                assert verify_signature(SECRET.encode(), headers, body)
                assert [a["id"] for a in json.loads(body)["alerts"]] == [alert["id"]]
                acked = await client.post(f"/api/v1/alerts/{alert['id']}/ack")
                assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
                assert acked.json()["acknowledged_by"] == "dr.house"  # the signed-in clinician
            # Two hours on: past every repeat and escalation step. The clock and the notifier run on their
            # own as well; one pass of each at the later times makes sure those times have been seen.
            assert service.alert_clock is not None and service.notifier is not None and service.store is not None
            offset[0] = 2 * 3600 * S
            await service.alert_clock.tick()
            offset[0] += 60 * S  # past the grouping window of anything the tick queued
            await service.notifier.run_once()
            assert [(i.channel, i.status) for i in service.store.notification_items(alert["id"])] == [
                ("email", "sent"), ("webhook", "sent")]
            assert (len(mailbox.messages), len(receiver.requests)) == (1, 1)
            assert service.store.outbox_counts() == {"pending": 0, "sent": 2, "failed": 0, "cancelled": 0,
                                                     "queued": 0}
            transitions = [(t.from_state, t.to_state) for t in service.store.transitions(alert["id"])]
            assert transitions == [(None, "firing"), ("firing", "acknowledged")]
        finally:
            await service.stop()
