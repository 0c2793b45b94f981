"""Gateway accounts on the broker, kept by Mosquitto's dynamic-security plugin.

Each call opens a short MQTT 5 connection (TLS, the admin account written by ``init-pki``), sends its
commands to ``$CONTROL/dynamic-security/v1`` and waits for the plugin's answer. The broker applies a
change at once and saves it in its state file; deleting a client disconnects it if it is connected,
so a revoked gateway is cut off without restarting anything.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.broker._dynsec import (
    CONTROL_TOPIC,
    RESPONSE_TOPIC,
    add_gateway_commands,
    revoke_gateway_commands,
    rotate_password_commands,
)
from cloud.broker._pki import PkiError, PkiFiles, read_credentials
from vitals.endpoints import parse_mqtt_url
from vitals.samples import is_identifier

__all__ = ["BrokerAccounts", "BrokerAccountsError", "GatewayCredentials"]


class BrokerAccountsError(RuntimeError):
    """The broker could not be reached or refused a change; the message says which and why."""


@dataclass(frozen=True)
class GatewayCredentials:
    """What a gateway logs in to the broker with (username = gateway id). Shown once: the broker keeps
    only a hash of the password."""

    gateway: str
    username: str
    password: str


class BrokerAccounts:
    """Create, rotate and revoke gateway accounts on a Mosquitto broker with the dynamic-security plugin.

    ``pki_dir`` is the directory ``vitalbridge cloud init-pki`` wrote (its ``ca.pem`` and
    ``broker-admin.json`` are read); ``mqtt_url`` is the broker (``mqtts://host:port``; the
    credentials in it, if any, are ignored for the admin account's). Raises :class:`BrokerAccountsError`
    (the files are checked when it is made, the broker on each call).
    """

    def __init__(self, pki_dir: Path, mqtt_url: str, *, timeout_s: float = 10.0) -> None:
        files = PkiFiles(Path(pki_dir))
        try:
            self._endpoint = parse_mqtt_url(mqtt_url)
            self._admin = read_credentials(files.admin)
            self._ca_pem = files.ca_cert.read_text()
        except (ValueError, PkiError) as exc:
            raise BrokerAccountsError(str(exc)) from None
        except OSError as exc:
            raise BrokerAccountsError(f"cannot read the CA {files.ca_cert}: {exc.strerror or exc}") from None
        self._files = files
        self._timeout_s = timeout_s

    def ca_pem(self) -> str:
        """The CA certificate (PEM) a gateway must trust to reach the broker."""
        return self._ca_pem

    def add_gateway(self, gateway: str) -> GatewayCredentials:
        """Give ``gateway`` a broker account limited to its own topics, or a new password if it has one."""
        _check(gateway)
        password = secrets.token_urlsafe(24)
        answers = self._send(add_gateway_commands(gateway, password))
        role_error, client_error = (answer.get("error") for answer in answers)
        if role_error and "exist" not in str(role_error).lower():
            raise BrokerAccountsError(f"the broker refused the role of gateway {gateway!r}: {role_error}")
        if client_error:
            if "exist" not in str(client_error).lower():
                raise BrokerAccountsError(f"the broker refused the account of gateway {gateway!r}: {client_error}")
            for answer in self._send(rotate_password_commands(gateway, password)):
                if answer.get("error"):
                    raise BrokerAccountsError(f"the broker refused a new password for gateway {gateway!r}: "
                                              f"{answer['error']}")
        return GatewayCredentials(gateway=gateway, username=gateway, password=password)

    def revoke_gateway(self, gateway: str) -> None:
        """Delete ``gateway``'s broker account: it can no longer connect, and is disconnected if it is connected.
        Revoking a gateway that has no account is not an error."""
        _check(gateway)
        for answer in self._send(revoke_gateway_commands(gateway)):
            error = answer.get("error")
            if error and "not found" not in str(error).lower():
                raise BrokerAccountsError(f"the broker refused to revoke gateway {gateway!r}: {error}")

    # -- one admin session ------------------------------------------------------------------------------------
    def _send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; return the plugin's answer to each, in order."""
        correlation = uuid.uuid4().hex
        tagged = [{**command, "correlationData": f"{correlation}-{index}"} for index, command in enumerate(commands)]
        connected, subscribed, answered = threading.Event(), threading.Event(), threading.Event()
        state: dict[str, Any] = {"error": "", "answers": {}}

        def on_connect(_client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if reason.is_failure:
                state["error"] = f"the broker refused the admin account: {reason}"
            connected.set()

        def on_subscribe(_client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
            if any(reason.is_failure for reason in reasons):
                state["error"] = "the admin account may not read the dynamic-security responses"
            subscribed.set()

        def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            try:
                responses = json.loads(message.payload).get("responses", [])
            except (ValueError, AttributeError):
                return
            for response in responses:
                data = response.get("correlationData", "") if isinstance(response, dict) else ""
                if isinstance(data, str) and data.startswith(correlation):
                    state["answers"][data] = response
            if len(state["answers"]) == len(tagged):
                answered.set()

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"vitalbridge-admin-{correlation[:12]}",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(*self._admin)
        if self._endpoint.tls:
            client.tls_set_context(ssl.create_default_context(cafile=str(self._files.ca_cert)))
        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        try:
            client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerAccountsError(f"cannot reach the broker {self._endpoint.url}: {exc}") from None
        client.loop_start()
        try:
            self._wait(connected, "to accept the admin connection", state)
            client.subscribe(RESPONSE_TOPIC, qos=1)
            self._wait(subscribed, "to accept the admin subscription", state)
            client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}).encode(), qos=1)
            self._wait(answered, "to answer the account change", state)
        finally:
            client.disconnect()
            client.loop_stop()
        return [state["answers"][f"{correlation}-{index}"] for index in range(len(tagged))]

    def _wait(self, event: threading.Event, what: str, state: dict[str, Any]) -> None:
        if not event.wait(self._timeout_s):
            raise BrokerAccountsError(f"the broker {self._endpoint.url} did not {what.removeprefix('to ')} within "
                                      f"{self._timeout_s:g} s (is its dynamic-security plugin loaded?)")
        if state["error"]:
            raise BrokerAccountsError(f"{self._endpoint.url}: {state['error']}")


def _check(gateway: str) -> None:
    if not is_identifier(gateway):
        raise BrokerAccountsError(f"gateway id {gateway!r} is not a valid identifier")
