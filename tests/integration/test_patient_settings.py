"""A doctor's per-patient settings through the real system (Mosquitto, influxd, the cloud service, a gateway).

A rule set is loaded from a file; a doctor sets one patient's SpO2 target through the API. The cloud then
keeps that patient's gateway's thresholds retained on ``vb/v1/{gateway}/cmd/config``; a real edge agent takes
them and its compression keeps every crossing of the patient's levels. Readings that only that patient's
settings make abnormal (SpO2 91 %: above the rule set's 90 %, below the patient's 92 %) raise one alert,
stamped with the settings version, and reach the doctor as one email and one webhook call; one
acknowledgement, then nothing more however long the clock runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.registry import Gateway, Patient
from tests.auth_helpers import clinician
from tests.integration._gateway import TestGateway, running_gateway, spo2_batch
from tests.integration.helpers import publish, wait_for
from tests.integration.test_patient_thresholds import T0, _agent, _compressed_spo2
from tests.receivers import smtp_server, verify_signature, webhook_receiver
from tests.unit.test_pipeline_threshold_levels import step_crossings
from vitalbridge.stack import free_port
from vitals.patient_thresholds import decode_threshold_config
from vitals.topics import config_topic

pytestmark = pytest.mark.integration

S = 10**9
SECRET = "integration-secret-0123456789"
PATIENT = "patient-042"  # the patient of the edge agent in test_patient_thresholds
RULES = """\
- type: threshold
  name: spo2_below_target
  metric: spo2
  direction: below
  threshold: 90
  target: low
  for_s: 60
  clear_threshold: 92
  clear_s: 60
  severity: urgent
"""


class RetainedWatcher:
    """Every message on one topic (retained ones included), with its retain flag, through a paho subscriber."""

    def __init__(self, mqtt_url: str, topic: str) -> None:
        host, port = mqtt_url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.messages.append((bytes(message.payload), message.retain))
        self.client.on_connect = lambda client, _u, _f, _r, _p: client.subscribe(topic, qos=1)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_a_doctors_threshold_reaches_the_gateway_and_one_deterioration_notifies_once(
        stack: Any, tmp_path: Path, unique_name: Any) -> None:
    from cloud.service import CloudConfig, CloudService

    gateway_id = unique_name("settings-gw-")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES, encoding="utf-8")
    offset = [0]
    with smtp_server() as mailbox, webhook_receiver() as receiver:
        policy = {
            "steps": [{"after_min": 0, "notify": ["doctor"]}, {"after_min": 15, "notify": ["care_team"]}],
            "repeat_min": {"urgent": 5}, "ack_timeout_min": None, "group_window_s": 1,
            "recipients": {"*": {"doctor": ["dr.lee@example.org", receiver.url],
                                 "care_team": ["team@example.org"]}},
        }
        config = CloudConfig.from_env(
            {}, mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=unique_name("vbsettings"),
            database_url=f"sqlite:///{tmp_path / 'cloud.db'}", http_port=free_port(),
            client_id=unique_name("ingest-"), shared_group=unique_name("group-"), max_wait_ms=20.0,
            alerting=policy, smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_from="alerts@vitalbridge.test",
            webhook_secret=SECRET, alert_tick_s=0.2, notify_poll_s=0.1, rules_file=str(rules_file),
            thresholds_every_s=30.0)  # the save's nudge, not the periodic pass, must send the thresholds
        service = CloudService(config, clock=lambda: time.time_ns() + offset[0])
        await service.start()
        watcher = RetainedWatcher(stack.mqtt_url, config_topic(gateway_id))
        try:
            assert service.security is not None and service.store is not None
            registry = service.security.registry
            # In worker threads, as the service does: a blocking call here would stall the ingest holding the
            # database's write lock on this event loop.
            await asyncio.to_thread(registry.add_patient, Patient(PATIENT, "Ada"))
            await asyncio.to_thread(registry.add_gateway, Gateway(gateway_id, "Ada's home", (PATIENT,)))
            doctor = await asyncio.to_thread(clinician, service.security, [PATIENT], "dr.lee")
            async with httpx.AsyncClient(base_url=service.api_url, headers=doctor) as client:
                url = f"/api/v1/patients/{PATIENT}/settings"
                saved = await client.put(url, json={
                    "settings": {"conditions": ["copd"], "targets": {"spo2": {"low": 92, "high": 96}}},
                    "reason": "COPD, target agreed with the respiratory team", "expected_version": 0})
                assert saved.status_code == 200, saved.text
                assert saved.json()["version"] == 1

                # The gateway's thresholds, retained at QoS 1, carry the patient's levels.
                def patient_levels() -> tuple[float, ...]:
                    for payload, _retained in reversed(watcher.messages):
                        return decode_threshold_config(payload).levels_for(PATIENT).get("spo2", ())
                    return ()

                await wait_for(lambda: 92.0 in patient_levels(), timeout_s=20)
                assert patient_levels() == (92.0, 94.0, 96.0)  # threshold, clear threshold (moved), target high
                late = RetainedWatcher(stack.mqtt_url, config_topic(gateway_id))  # a subscriber arriving later
                try:
                    await wait_for(lambda: bool(late.messages), timeout_s=10)
                    payload, retained = late.messages[-1]
                    assert retained and decode_threshold_config(payload).levels_for(PATIENT)["spo2"] == (
                        92.0, 94.0, 96.0)
                finally:
                    late.close()
                revisions = [decode_threshold_config(p).revision for p, _ in watcher.messages]
                assert revisions == sorted(revisions)  # the revision only grows

                # A real edge agent takes them and keeps every crossing of the patient's levels.
                agent = _agent(gateway_id, stack.mqtt_url, tmp_path / "agent-spool.db")
                publisher = asyncio.create_task(agent.publisher.run())
                try:
                    await wait_for(lambda: agent.thresholds.config is not None
                                   and 92.0 in agent.thresholds.config.levels_for(PATIENT).get("spo2", ()),
                                   timeout_s=30)
                    values = [93.0, 92.0, 91.0, 92.0, 93.0, 94.0, 95.0, 94.0, 93.0, 92.5] * 3
                    times = [T0 + i * S for i in range(len(values))]
                    kept_times, kept_values = _compressed_spo2(agent, values)
                    levels = [92.0, 94.0, 96.0]
                    assert step_crossings(kept_times, kept_values, levels) == step_crossings(times, values, levels)
                finally:
                    publisher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await publisher
                    agent.spool.close()

                # 91 %: normal by the rule set (below 90), low by this patient's target (below 92).
                gateway = TestGateway(gateway_id, stack.mqtt_url, tmp_path / "spool.db")
                start = time.time_ns() - 300 * S
                async with running_gateway(gateway):
                    series = [96.0] * 30 + [91.0, 90.5, 91.0] * 40
                    for index in range(5):
                        gateway.add(spo2_batch(gateway_id, PATIENT, start + index * 30 * S,
                                               series[index * 30:(index + 1) * 30]))
                    assert await gateway.confirmed_all()
                await wait_for(lambda: len(mailbox.messages) == 1 and len(receiver.requests) == 1, timeout_s=60)
                [alert] = (await client.get("/api/v1/alerts")).json()
                assert (alert["patient"], alert["rule"], alert["state"], alert["threshold"]) == (
                    PATIENT, "spo2_below_target", "firing", 92.0)
                assert alert["settings_version"] == "1" and alert["rule_version"]
                [mail] = mailbox.messages
                assert mail["To"] == "dr.lee@example.org" and PATIENT in mail["Subject"]
                [(headers, body)] = receiver.requests
                assert verify_signature(SECRET.encode(), headers, body)
                assert [a["id"] for a in json.loads(body)["alerts"]] == [alert["id"]]
                acked = await client.post(f"/api/v1/alerts/{alert['id']}/ack")
                assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "dr.lee"
            # Two hours on: past every repeat and escalation step; nothing more goes out.
            assert service.alert_clock is not None and service.notifier is not None
            offset[0] = 2 * 3600 * S
            await service.alert_clock.tick()
            offset[0] += 60 * S
            await service.notifier.run_once()
            assert (len(mailbox.messages), len(receiver.requests)) == (1, 1)
            assert [(i.channel, i.status) for i in service.store.notification_items(alert["id"])] == [
                ("email", "sent"), ("webhook", "sent")]
        finally:
            watcher.close()
            await service.stop()
            host, port = stack.mqtt_url.removeprefix("mqtt://").split(":")
            publish(host, int(port), [(config_topic(gateway_id), b"")], retain=True)  # leave the broker clean
