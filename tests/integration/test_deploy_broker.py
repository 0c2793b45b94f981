"""The broker configuration that compose and Kubernetes ship (deploy/mosquitto/), run by a real Mosquitto.

Only its paths and ports are changed for the test: password authentication, the ACL that keeps each
gateway in its own subtree, and the loopback probe listener that the health checks subscribe through.
"""

from __future__ import annotations

import getpass
import os
import queue
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from vitalbridge.stack import ServiceProcess, free_port
from vitalbridge.stack._mosquitto import mqtt_connack
from vitalbridge.stack._process import find_binary

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PASSWORDS = {"vitalbridge-cloud": "cloud-secret", "gw1": "gw1-secret", "gw2": "gw2-secret"}


class Broker:
    def __init__(self, port: int, probe_port: int) -> None:
        self.port = port
        self.probe_port = probe_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    root = tmp_path / "mosquitto"
    for folder in ("config", "secrets", "data"):
        (root / folder).mkdir(parents=True)
    for name in ("acl", "probe-acl"):
        (root / "config" / name).write_text((DEPLOY / "mosquitto" / name).read_text())
    passwd = root / "secrets" / "passwd"
    tool = find_binary("mosquitto_passwd", "mosquitto")
    for user, password in PASSWORDS.items():
        flags = ["-c"] if not passwd.exists() else []
        subprocess.run([tool, *flags, "-b", str(passwd), user, password], check=True, timeout=30,
                       capture_output=True)
    broker = Broker(free_port(), free_port())
    config = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    config = config.replace("/mosquitto/", f"{root}/")
    config = re.sub(r"^listener 1883$", f"listener {broker.port} 127.0.0.1", config, flags=re.MULTILINE)
    config = re.sub(r"^listener 1880 127\.0\.0\.1$", f"listener {broker.probe_port} 127.0.0.1", config,
                    flags=re.MULTILINE)
    user = "root" if os.geteuid() == 0 else getpass.getuser()
    (root / "mosquitto.conf").write_text(f"user {user}\n{config}")
    process = ServiceProcess("mosquitto", [find_binary("mosquitto", "mosquitto"), "-c", str(root / "mosquitto.conf")],
                             root / "mosquitto.log", lambda: mqtt_connack("127.0.0.1", broker.probe_port))
    process.start()
    try:
        yield broker
    finally:
        process.stop()


class Client:
    """A paho MQTT 5 client that queues what it receives and waits for each acknowledgement."""

    def __init__(self, broker: Broker, user: str) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subacks: queue.Queue[list[Any]] = queue.Queue()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=mqtt.MQTTv5)
        self._client.username_pw_set(user, PASSWORDS[user])
        self._client.on_message = lambda _c, _u, message: self.received.put((message.topic, message.payload))
        self._client.on_subscribe = lambda _c, _u, _mid, codes, _p: self._subacks.put(list(codes))
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()

    def subscribe(self, topic: str) -> bool:
        """Subscribe at QoS 1; True when the broker granted it."""
        self._client.subscribe(topic, qos=1)
        [code] = self._subacks.get(timeout=30)
        return not code.is_failure

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(30)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _probe_command() -> list[str]:
    statefulsets = yaml.safe_load_all((DEPLOY / "kubernetes" / "mosquitto.yaml").read_text())
    [broker] = [obj for obj in statefulsets if obj["kind"] == "StatefulSet"]
    command: list[str] = broker["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    return command


def test_the_health_probe_subscribes_through_the_loopback_listener(broker: Broker) -> None:
    command = _probe_command()
    command[command.index("-p") + 1] = str(broker.probe_port)
    assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    # The probe listener lets an anonymous client read the uptime and nothing else.
    denied = [*command[:command.index("-t") + 1], "vb/v1/#", "-C", "1", "-W", "2"]
    assert subprocess.run(denied, capture_output=True, timeout=30).returncode != 0


def test_only_known_accounts_connect(broker: Broker) -> None:
    assert not mqtt_connack("127.0.0.1", broker.port)  # anonymous
    assert mqtt_connack("127.0.0.1", broker.probe_port)


def test_a_gateway_publishes_only_in_its_own_subtree_and_the_cloud_reads_every_gateway(broker: Broker) -> None:
    cloud, gw1, gw2 = Client(broker, "vitalbridge-cloud"), Client(broker, "gw1"), Client(broker, "gw2")
    try:
        assert cloud.subscribe("$share/ingest/vb/v1/+/data")
        assert cloud.subscribe("vb/v1/+/status")
        gw1.publish("vb/v1/gw2/data", b"forged")  # refused: not gw1's subtree
        gw1.publish("vb/v1/gw1/data", b"gw1 batch")
        gw2.publish("vb/v1/gw2/status", b"online")
        # One publisher's messages arrive in order: had the forged one passed, it would come first.
        assert cloud.received.get(timeout=30) == ("vb/v1/gw1/data", b"gw1 batch")
        assert cloud.received.get(timeout=30) == ("vb/v1/gw2/status", b"online")
        # The cloud answers on a gateway's cmd/ topics; no other gateway hears it there (Mosquitto
        # grants the subscription and withholds each message the ACL does not let it read).
        assert gw1.subscribe("vb/v1/gw1/cmd/#")
        for topic in ("vb/v1/gw1/cmd/#", "vb/v1/+/data", "vb/v1/gw2/cmd/#"):
            gw2.subscribe(topic)
        cloud.publish("vb/v1/gw1/cmd/ack", b"stored 1")
        gw1.publish("vb/v1/gw1/data", b"gw1 batch 2")
        cloud.publish("vb/v1/gw2/cmd/ack", b"stored 7")
        assert gw1.received.get(timeout=30) == ("vb/v1/gw1/cmd/ack", b"stored 1")
        # Mosquitto queues each message to its subscribers when it takes it in, in order: gw1's second
        # batch (acknowledged before the cloud's second ack was sent) would reach gw2 first if it could.
        assert gw2.received.get(timeout=30) == ("vb/v1/gw2/cmd/ack", b"stored 7")
        assert gw2.received.empty()
    finally:
        for client in (cloud, gw1, gw2):
            client.close()
