"""Mosquitto on a free loopback port with a generated config."""

from __future__ import annotations

import getpass
import glob
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from vitalbridge.stack._process import ServiceProcess, StackError, find_binary, free_port

__all__ = ["BrokerSecurity", "Mosquitto", "dynsec_plugin", "mqtt_connack"]

# MQTT 3.1.1 CONNECT with clean session, keepalive 60 s and client id "vb-probe".
_CONNECT = bytes([0x10, 20, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 60, 0, 8]) + b"vb-probe"
_DISCONNECT = bytes([0xE0, 0])


def mqtt_connack(host: str, port: int, timeout_s: float = 1.0, *, tls: ssl.SSLContext | None = None,
                 any_answer: bool = False) -> bool:
    """Return True when an MQTT broker at ``host:port`` accepts a connection (CONNACK code 0), or with
    ``any_answer`` when it answers a CONNACK at all (a broker that refuses anonymous clients is up too).
    ``tls`` wraps the connection in TLS first."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            if tls is None:
                return _handshake(raw, any_answer)
            with tls.wrap_socket(raw, server_hostname=host) as sock:
                return _handshake(sock, any_answer)
    except OSError:
        return False


def _handshake(sock: socket.socket, any_answer: bool) -> bool:
    sock.sendall(_CONNECT)
    reply = sock.recv(4)
    answered = len(reply) == 4 and reply[0] == 0x20
    accepted = answered and reply[3] == 0
    if accepted:
        sock.sendall(_DISCONNECT)
    return answered if any_answer else accepted


def dynsec_plugin() -> str | None:
    """The path of Mosquitto's dynamic-security plugin, or None when it is not installed."""
    for pattern in ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
                    "/usr/local/lib/mosquitto_dynamic_security.so"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


@dataclass(frozen=True)
class BrokerSecurity:
    """The secure profile's files: the CA, the broker's certificate chain and key, the plugin's state file."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    dynsec_file: Path

    def client_context(self) -> ssl.SSLContext:
        """A TLS context that trusts only this broker's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


class Mosquitto:
    """A Mosquitto broker listening on ``127.0.0.1:port`` with persistence in ``run_dir``.

    Without ``security`` it is open: plain TCP, anonymous clients welcome. With it (the secure
    profile) its only listener speaks TLS 1.2+ with the given certificate, anonymous clients are
    refused, and who may log in and use which topics is kept by the dynamic-security plugin in
    ``security.dynsec_file`` (accounts can change while it runs).

    Queued QoS 1 messages, retained messages and persistent sessions are saved in
    ``run_dir/data/mosquitto.db`` every ``autosave_s`` seconds and on a clean stop, so
    :meth:`restart` keeps them; :meth:`kill` (SIGKILL) loses what changed since the last save. Each
    save writes the whole store, so saving every second would rewrite a benchmark's queued backlog
    every second.
    ``max_queued`` bounds the messages queued for one offline client (a benchmark's backlog wants more).
    """

    def __init__(self, run_dir: Path, port: int | None = None, *, autosave_s: int = 30,
                 max_queued: int = 100_000, security: BrokerSecurity | None = None) -> None:
        self.run_dir = run_dir
        self.security = security
        self.autosave_s = autosave_s
        self.max_queued = max_queued
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._process: ServiceProcess | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``, or ``mqtts://127.0.0.1:PORT`` in the secure profile."""
        return f"{'mqtts' if self.security is not None else 'mqtt'}://{self.host}:{self.port}"

    def config_text(self) -> str:
        """The generated mosquitto.conf."""
        # Started as root, Mosquitto drops to the user "mosquitto" unless told otherwise; keep the
        # invoking user so it can read and write its own run directory.
        user = "root" if os.geteuid() == 0 else getpass.getuser()
        return "\n".join(
            [
                f"user {user}",
                f"listener {self.port} {self.host}",
                *self._access_lines(),
                "persistence true",
                f"persistence_location {self.run_dir / 'data'}/",
                f"autosave_interval {self.autosave_s}",
                "log_dest stdout",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "set_tcp_nodelay true",  # no Nagle delay on PUBACKs and small messages
                "max_inflight_messages 100",
                f"max_queued_messages {self.max_queued}",
                "message_size_limit 2097152",
                "",
            ]
        )

    def _access_lines(self) -> list[str]:
        if self.security is None:
            return ["allow_anonymous true"]
        plugin = dynsec_plugin()
        if plugin is None:
            raise StackError("the secure profile needs Mosquitto's dynamic-security plugin "
                             "(mosquitto_dynamic_security.so, in Debian's mosquitto package from 2.0 on)")
        security = self.security
        return [
            # The one listener speaks TLS: there is no plain port to fall back to.
            f"cafile {security.ca_file}",
            f"certfile {security.cert_file}",
            f"keyfile {security.key_file}",
            "tls_version tlsv1.2",
            "require_certificate false",
            "allow_anonymous false",
            f"plugin {plugin}",
            f"plugin_opt_config_file {security.dynsec_file}",
            # QoS 0 cannot be refused by Mosquitto; it is bounded instead: never queued for an offline client.
            "queue_qos0_messages false",
        ]

    def _ready(self) -> bool:
        if self.security is None:
            return mqtt_connack(self.host, self.port)
        return mqtt_connack(self.host, self.port, tls=self.security.client_context(), any_answer=True)

    def start(self) -> None:
        """Write the config, start the broker and wait for a CONNACK."""
        binary = find_binary("mosquitto", "mosquitto")
        (self.run_dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "mosquitto.conf"
        config.write_text(self.config_text())
        self._process = ServiceProcess(
            "mosquitto",
            [binary, "-c", str(config)],
            self.run_dir / "mosquitto.log",
            self._ready,
        )
        self._process.start()

    def stop(self) -> None:
        """Stop the broker cleanly (it saves its persistent state on the way out)."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash or power cut would (for fault tests)."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> None:
        """Stop the broker cleanly and start it again on the same port with the same data."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (for measuring its CPU and memory)."""
        return self._process.pid if self._process is not None else None
