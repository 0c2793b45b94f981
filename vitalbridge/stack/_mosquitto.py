"""Mosquitto on a free loopback port with a generated config."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

from vitalbridge.stack._process import ServiceProcess, find_binary, free_port

__all__ = ["Mosquitto", "mqtt_connack"]

# MQTT 3.1.1 CONNECT with clean session, keepalive 60 s and client id "vb-probe".
_CONNECT = bytes([0x10, 20, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 60, 0, 8]) + b"vb-probe"
_DISCONNECT = bytes([0xE0, 0])


def mqtt_connack(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Return True when an MQTT broker at ``host:port`` accepts a connection (CONNACK code 0)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(_CONNECT)
            reply = sock.recv(4)
            accepted = len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0
            if accepted:
                sock.sendall(_DISCONNECT)
            return accepted
    except OSError:
        return False


class Mosquitto:
    """A Mosquitto broker listening on ``127.0.0.1:port``, anonymous, with persistence in ``run_dir``.

    Queued QoS 1 messages, retained messages and persistent sessions are saved in
    ``run_dir/data/mosquitto.db`` every ``autosave_s`` seconds and on a clean stop, so
    :meth:`restart` keeps them; :meth:`kill` (SIGKILL) loses what changed since the last save. Each
    save writes the whole store, so saving every second would rewrite a benchmark's queued backlog
    every second.
    ``max_queued`` bounds the messages queued for one offline client (a benchmark's backlog wants more).
    """

    def __init__(self, run_dir: Path, port: int | None = None, *, autosave_s: int = 30,
                 max_queued: int = 100_000) -> None:
        self.run_dir = run_dir
        self.autosave_s = autosave_s
        self.max_queued = max_queued
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._process: ServiceProcess | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{self.host}:{self.port}"

    def config_text(self) -> str:
        """The generated mosquitto.conf."""
        # Started as root, Mosquitto drops to the user "mosquitto" unless told otherwise; keep the
        # invoking user so it can read and write its own run directory.
        user = "root" if os.geteuid() == 0 else getpass.getuser()
        return "\n".join(
            [
                f"user {user}",
                f"listener {self.port} {self.host}",
                "allow_anonymous true",
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
            lambda: mqtt_connack(self.host, self.port),
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
