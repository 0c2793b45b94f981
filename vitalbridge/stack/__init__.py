"""The local stack runner: real Mosquitto, InfluxDB and PostgreSQL as child processes on free loopback ports.

Used by ``vitalbridge demo``, by ``vitalbridge stack`` for a developer, and as the pytest fixture of
every integration test. Each service gets a generated config and its own run directory, is waited
for until it really answers (MQTT CONNACK, InfluxDB ``/ping`` 204, a PostgreSQL connection), and is
stopped cleanly.
"""

from vitalbridge.stack._influxd import InfluxAccounts, InfluxDB
from vitalbridge.stack._mosquitto import BrokerSecurity, Mosquitto
from vitalbridge.stack._postgres import PostgreSQL, find_postgres_bindir
from vitalbridge.stack._process import ServiceProcess, ServiceUser, StackError, free_port
from vitalbridge.stack._runner import LocalStack

__all__ = [
    "BrokerSecurity",
    "InfluxAccounts",
    "InfluxDB",
    "LocalStack",
    "Mosquitto",
    "PostgreSQL",
    "ServiceProcess",
    "ServiceUser",
    "StackError",
    "find_postgres_bindir",
    "free_port",
]
