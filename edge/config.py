"""The gateway's configuration file (YAML): who it is, where it sends, which devices it reads.

Example::

    gateway: home-0001
    mqtt_url: mqtt://broker.example.org:8883
    spool: /var/lib/vitalbridge/spool.db
    batch_interval_s: 5
    devices:
      - id: oximeter-1
        patient: patient-001
        profile: generic.plx_oximeter
        transport: ble
        address: "C4:7F:51:0A:11:22"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vitals.endpoints import parse_mqtt_url
from vitals.samples import is_identifier

__all__ = ["ConfigError", "DeviceConfig", "GatewayConfig", "dump_config", "load_config", "parse_config"]


class ConfigError(ValueError):
    """A gateway config that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class DeviceConfig:
    """One device instance: which device, which profile, which patient, reached how."""

    id: str
    patient: str
    profile: str
    transport: str
    address: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything ``vitalbridge edge run`` needs."""

    gateway: str
    mqtt_url: str
    spool: str
    batch_interval_s: float = 5.0
    utc_offset_s: int = 0
    devices: tuple[DeviceConfig, ...] = ()
    pipeline: dict[str, Any] = field(default_factory=dict)


_DEVICE_KEYS = {"id", "patient", "profile", "transport", "address", "options"}
_MAX_UTC_OFFSET_S = 14 * 3600  # UTC-12 .. UTC+14 are the offsets in use
_TOP_KEYS = {"gateway", "mqtt_url", "spool", "batch_interval_s", "utc_offset_s", "devices", "pipeline"}


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise ConfigError(f"{where}: missing required field '{key}'")
    return mapping[key]


def _identifier(mapping: dict[str, Any], key: str, where: str) -> str:
    value = _require(mapping, key, where)
    if not is_identifier(value):
        raise ConfigError(f"{where}: '{key}' must be 1-64 letters, digits, '.', '_' or '-', not {value!r}")
    return str(value)


def parse_config(raw: Any, source: str = "config") -> GatewayConfig:
    """Validate a parsed YAML document and return a :class:`GatewayConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
    gateway = _identifier(raw, "gateway", source)
    mqtt_url = str(_require(raw, "mqtt_url", source))
    try:
        parse_mqtt_url(mqtt_url)
    except ValueError as exc:
        raise ConfigError(f"{source}: mqtt_url: {exc}") from None
    interval = raw.get("batch_interval_s", 5.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0.05 <= interval <= 3600:
        raise ConfigError(f"{source}: batch_interval_s must be a number of seconds in 0.05..3600")
    utc_offset = raw.get("utc_offset_s", 0)
    if isinstance(utc_offset, bool) or not isinstance(utc_offset, int) or abs(utc_offset) > _MAX_UTC_OFFSET_S:
        raise ConfigError(
            f"{source}: utc_offset_s must be a whole number of seconds in "
            f"-{_MAX_UTC_OFFSET_S}..{_MAX_UTC_OFFSET_S}, not {utc_offset!r}"
        )
    devices_raw = raw.get("devices", [])
    if not isinstance(devices_raw, list):
        raise ConfigError(f"{source}: devices must be a list")
    devices = []
    seen: set[str] = set()
    for index, entry in enumerate(devices_raw):
        where = f"{source}: devices[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = set(entry) - _DEVICE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        device_id = _identifier(entry, "id", where)
        if device_id in seen:
            raise ConfigError(f"{where}: device id {device_id!r} is used twice")
        seen.add(device_id)
        options = entry.get("options", {})
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: options must be a mapping")
        devices.append(
            DeviceConfig(
                id=device_id,
                patient=_identifier(entry, "patient", where),
                profile=_identifier(entry, "profile", where),
                transport=str(_require(entry, "transport", where)),
                address=str(entry.get("address", "")),
                options=options,
            )
        )
    pipeline = raw.get("pipeline", {})
    if not isinstance(pipeline, dict):
        raise ConfigError(f"{source}: pipeline must be a mapping of metric -> settings")
    return GatewayConfig(
        gateway=gateway,
        mqtt_url=mqtt_url,
        spool=str(raw.get("spool", "vitalbridge-spool.db")),
        batch_interval_s=float(interval),
        utc_offset_s=utc_offset,
        devices=tuple(devices),
        pipeline=pipeline,
    )


def load_config(path: Path) -> GatewayConfig:
    """Read and validate the YAML config at ``path``."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw, str(path))


def dump_config(config: GatewayConfig) -> str:
    """Render ``config`` back to YAML (used by ``edge pair``)."""
    document: dict[str, Any] = {
        "gateway": config.gateway,
        "mqtt_url": config.mqtt_url,
        "spool": config.spool,
        "batch_interval_s": config.batch_interval_s,
        "utc_offset_s": config.utc_offset_s,
        "devices": [
            {key: value for key, value in vars(device).items() if value not in ("", {})}
            for device in config.devices
        ],
    }
    if config.pipeline:
        document["pipeline"] = config.pipeline
    return yaml.safe_dump(document, sort_keys=False)
