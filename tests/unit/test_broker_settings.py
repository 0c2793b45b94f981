"""Broker and InfluxDB credentials in the gateway's and the cloud's settings: files beside the config, clear errors,
secrets never echoed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cloud.broker import init_pki
from cloud.service import CloudConfig, ConfigError
from edge.config import ConfigError as GatewayConfigError
from edge.config import parse_config


def _gateway(tmp_path: Path, **extra: str) -> dict[str, object]:
    return {"gateway": "home-1", "mqtt_url": "mqtts://broker.example.org:8883", **extra}


def test_the_ca_and_password_files_are_found_beside_the_config(tmp_path: Path) -> None:
    files = init_pki(tmp_path / "pki", now=dt.datetime.now(dt.UTC)).files
    (tmp_path / "broker-password").write_text("s3cret-password\n")
    config = parse_config(_gateway(tmp_path, mqtt_ca_file="pki/ca.pem", mqtt_password_file="broker-password"),
                          "gateway.yaml", base_dir=tmp_path)
    assert config.mqtt_ca_file == str(files.ca_cert)
    assert config.broker_ca_file() == str(files.ca_cert)
    assert config.broker_password() == "s3cret-password"


def test_without_the_files_there_is_nothing_to_read(tmp_path: Path) -> None:
    config = parse_config(_gateway(tmp_path), "gateway.yaml", base_dir=tmp_path)
    assert config.broker_ca_file() is None and config.broker_password() is None


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("\n  \n", "is empty")])
def test_an_unusable_password_file_is_a_config_error(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "pw").write_text(content)
    config = parse_config(_gateway(tmp_path, mqtt_password_file="pw"), "gateway.yaml", base_dir=tmp_path)
    with pytest.raises(GatewayConfigError, match=message) as caught:
        config.broker_password()
    assert "mqtt_password_file" in str(caught.value)


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_an_unusable_ca_file_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "ca.pem").write_text(content)
    config = parse_config(_gateway(tmp_path, mqtt_ca_file="ca.pem"), "gateway.yaml", base_dir=tmp_path)
    with pytest.raises(GatewayConfigError, match=r"cannot use .* as the broker's CA"):
        config.broker_ca_file()


def test_the_cloud_reads_its_broker_and_influxdb_accounts_from_the_environment() -> None:
    config = CloudConfig.from_env({
        "VB_MQTT_URL": "mqtts://broker:8883", "VB_MQTT_CA_FILE": "/etc/vb/ca.pem", "VB_MQTT_USERNAME": "ingest",
        "VB_MQTT_PASSWORD": "mqtt-secret", "VB_INFLUX_USERNAME": "writer", "VB_INFLUX_PASSWORD": "w-secret",
        "VB_INFLUX_READ_USERNAME": "reader", "VB_INFLUX_READ_PASSWORD": "r-secret", "VB_BROKER_PKI_DIR": "/etc/vb",
    })
    assert config.mqtt_ca_file == "/etc/vb/ca.pem" and config.mqtt_username == "ingest"
    assert config.mqtt_password is not None and config.mqtt_password.get_secret_value() == "mqtt-secret"
    assert config.influx_read_username == "reader" and config.broker_pki_dir == "/etc/vb"
    assert not any(secret in repr(config) for secret in ("mqtt-secret", "w-secret", "r-secret"))


def test_a_bad_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        CloudConfig.from_env({"VB_MQTT_PASSWORD": ["not", "a", "string"]})  # type: ignore[dict-item]
    assert "VB_MQTT_PASSWORD" in str(caught.value) and "not" not in str(caught.value).split("(got")[1]
