"""The stack runner's secure profile as configuration: TLS only, nobody anonymous, the plugin loaded; InfluxDB
with auth."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitalbridge.stack import BrokerSecurity, InfluxDB, LocalStack, Mosquitto, StackError
from vitalbridge.stack._mosquitto import dynsec_plugin


def _security(tmp_path: Path) -> BrokerSecurity:
    return BrokerSecurity(tmp_path / "ca.pem", tmp_path / "broker.pem", tmp_path / "broker.key",
                          tmp_path / "dynamic-security.json")


@pytest.mark.skipif(dynsec_plugin() is None, reason="Mosquitto's dynamic-security plugin is not installed")
def test_the_secure_broker_has_one_tls_listener_and_no_anonymous_clients(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, 18883, security=_security(tmp_path))
    lines = broker.config_text().splitlines()
    assert [line for line in lines if line.startswith("listener")] == ["listener 18883 127.0.0.1"]
    assert "allow_anonymous false" in lines and "allow_anonymous true" not in lines
    assert f"cafile {tmp_path / 'ca.pem'}" in lines and f"keyfile {tmp_path / 'broker.key'}" in lines
    assert any(line.startswith("plugin ") and line.endswith("mosquitto_dynamic_security.so") for line in lines)
    assert f"plugin_opt_config_file {tmp_path / 'dynamic-security.json'}" in lines
    assert broker.url == "mqtts://127.0.0.1:18883"


def test_the_open_broker_stays_as_it_was(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, 11883)
    assert "allow_anonymous true" in broker.config_text().splitlines()
    assert broker.url == "mqtt://127.0.0.1:11883"


def test_without_the_plugin_the_secure_profile_says_what_is_missing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vitalbridge.stack._mosquitto.dynsec_plugin", lambda: None)
    with pytest.raises(StackError, match="dynamic-security plugin"):
        Mosquitto(tmp_path, 18883, security=_security(tmp_path)).config_text()


def test_influxdb_requires_users_in_the_secure_profile(tmp_path: Path) -> None:
    assert "  auth-enabled = true" in InfluxDB(tmp_path, 18086, auth=True).config_text().splitlines()
    assert "  auth-enabled = false" in InfluxDB(tmp_path, 18086).config_text().splitlines()


def test_the_open_stack_has_no_pki(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path)
    with pytest.raises(RuntimeError, match="only the secure profile"):
        _ = stack.ca_file
    secure = LocalStack(tmp_path, secure=True)
    assert secure.ca_file == tmp_path / "pki" / "ca.pem"
    assert secure.mosquitto is not None and secure.mosquitto.security is not None
