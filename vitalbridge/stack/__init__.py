"""The local stack runner: real Mosquitto and InfluxDB as child processes on free loopback ports.

Used by ``vitalbridge demo``, by ``vitalbridge stack`` for a developer, and as the pytest fixture of
every integration test. Each service gets a generated config and its own run directory, is waited
for until it really answers (MQTT CONNACK, InfluxDB ``/ping`` 204), and is stopped cleanly.
"""

from vitalbridge.stack._influxd import InfluxDB
from vitalbridge.stack._mosquitto import Mosquitto
from vitalbridge.stack._process import ServiceProcess, StackError, free_port
from vitalbridge.stack._runner import LocalStack

__all__ = ["InfluxDB", "LocalStack", "Mosquitto", "ServiceProcess", "StackError", "free_port"]
