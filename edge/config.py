"""The gateway's configuration file (YAML): who it is, where it sends, which devices it reads.

Example::

    gateway: home-0001
    mqtt_url: mqtts://broker.example.org:8883
    spool: /var/lib/vitalbridge/spool.db
    timezone: Europe/Berlin
    batch_interval_s: 5
    publisher: {ack_timeout_s: 30, window: 64}
    broker:                      # written by `vitalbridge edge enroll`
      username: home-0001
      password_file: credentials/broker-password
      ca_file: credentials/broker-ca.pem
    devices:
      - id: oximeter-1
        patient: patient-001
        profile: generic.plx_oximeter
        transport: ble
        address: "C4:7F:51:0A:11:22"

The file is checked against a pydantic model (:class:`GatewayFile`); every mistake is a
:class:`ConfigError` whose message is one line naming the file, line and field. What needs the
device profiles and transports (a profile's transport, each transport's options) is checked by
:func:`edge.preflight.check_devices`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from device_profiles._yamlmarks import MarkedDocument
from device_profiles.userfile import FieldPath, FileProblem, UserFileError, read_yaml, validate
from edge.localtime import UnknownTimezoneError, offset_s_at, system_timezone, zone_for
from vitals.endpoints import parse_mqtt_url
from vitals.samples import is_identifier

__all__ = [
    "BrokerLogin",
    "BrokerSection",
    "ConfigError",
    "ConfigSource",
    "DeviceConfig",
    "DeviceEntry",
    "GatewayConfig",
    "DEFAULT_SPOOL",
    "GatewayFile",
    "PublisherSection",
    "broker_login",
    "load_config",
    "parse_config",
]

_MAX_UTC_OFFSET_S = 14 * 3600  # UTC-12 .. UTC+14 are the offsets in use
DEFAULT_SPOOL = "vitalbridge-spool.db"


class ConfigError(UserFileError):
    """A gateway config that cannot be used; the message (one line) names the file, line and field."""


@dataclass(frozen=True)
class ConfigSource:
    """Where a config came from: the file and the line of every field (for error messages)."""

    file: str
    document: MarkedDocument | None = None

    def problem(self, path: FieldPath, message: str) -> FileProblem:
        """A :class:`FileProblem` at ``path`` of this file."""
        line = self.document.line_of(path) if self.document is not None else None
        return FileProblem(self.file, line, path, message)

    def error(self, path: FieldPath, message: str) -> ConfigError:
        """A :class:`ConfigError` at ``path`` of this file."""
        return ConfigError([self.problem(path, message)])


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
    """Everything ``vitalbridge edge run`` needs.

    ``timezone`` (IANA name) or the older fixed ``utc_offset_s`` say how to read devices that stamp
    local time; with neither, UTC. ``profile_dirs`` are extra device-profile folders (absolute once
    loaded from a file). ``status_file`` is where the running agent keeps its status for
    ``vitalbridge edge status`` (default: next to the spool, see :attr:`status_path`). ``publisher``
    holds the fields of :class:`edge.publisher.PublisherSettings` the file sets (the rest default).
    ``broker_username``, ``broker_password_file`` and ``broker_ca_file`` (absolute once loaded from a file)
    are the gateway's own broker login and the CA its broker's certificate is checked against (default: the
    system's CAs); :func:`broker_login` reads them.
    """

    gateway: str
    mqtt_url: str
    spool: str
    batch_interval_s: float = 5.0
    utc_offset_s: int | None = None
    devices: tuple[DeviceConfig, ...] = ()
    pipeline: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    profile_dirs: tuple[str, ...] = ()
    status_file: str | None = None
    publisher: dict[str, float | int] = field(default_factory=dict)
    broker_username: str | None = None
    broker_password_file: str | None = None
    broker_ca_file: str | None = None
    source: ConfigSource | None = field(default=None, compare=False, repr=False)

    @property
    def status_path(self) -> Path:
        """The status file: ``status_file``, else ``<spool>.status.json`` beside the spool."""
        if self.status_file is not None:
            return Path(self.status_file)
        spool = Path(self.spool)
        return spool.with_name(spool.name + ".status.json") if self.spool != ":memory:" else Path("status.json")

    def zone(self) -> dt.tzinfo:
        """The gateway's time zone (``timezone``, else the fixed ``utc_offset_s``, else UTC)."""
        return zone_for(self.timezone, self.utc_offset_s)

    def offset_s_at(self, utc_ns: int) -> int:
        """Local time minus UTC (s) at ``utc_ns``, daylight saving included."""
        return offset_s_at(self.zone(), utc_ns)

    def where(self, path: FieldPath) -> ConfigSource:
        """The source to name in an error about ``path`` (a placeholder when built in code)."""
        return self.source or ConfigSource("gateway config")


# -- the file's schema -----------------------------------------------------------------------------
def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(f"expected 1-64 letters, digits, '.', '_' or '-', not {value!r}")
    return value


def _mqtt_url(value: str) -> str:
    parse_mqtt_url(value)
    return value


def _timezone(value: str) -> str:
    try:
        zone_for(value)
    except UnknownTimezoneError as exc:
        raise ValueError(str(exc)) from None
    return value


Identifier = Annotated[str, Field(strict=True), AfterValidator(_identifier)]
Text = Annotated[str, Field(strict=True, min_length=1)]


class DeviceEntry(BaseModel):
    """One entry of ``devices``. ``options`` are checked by the device's transport."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: Identifier
    patient: Identifier
    profile: Identifier
    transport: Identifier
    address: Annotated[str, Field(strict=True)] = ""
    options: dict[str, Any] | None = None


class PublisherSection(BaseModel):
    """The ``publisher`` section: how batches are paced to the cloud (``edge.publisher.PublisherSettings``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ack_timeout_s: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] | None = None
    window: Annotated[int, Field(ge=1, le=10_000)] | None = None
    live_window_s: Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)] | None = None
    session_expiry_s: Annotated[int, Field(ge=0, le=0xFFFF_FFFF)] | None = None
    reconnect_initial_s: Annotated[float, Field(ge=0.1, le=3600, allow_inf_nan=False)] | None = None
    reconnect_max_s: Annotated[float, Field(ge=0.1, le=86_400, allow_inf_nan=False)] | None = None
    reconnect_jitter: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _backoff_ordered(self) -> PublisherSection:
        first, longest = self.reconnect_initial_s, self.reconnect_max_s
        if first is not None and longest is not None and longest < first:
            raise ValueError(f"reconnect_max_s ({longest:g}) must be at least reconnect_initial_s ({first:g})")
        return self


class BrokerSection(BaseModel):
    """The ``broker`` section: the gateway's own broker login (the password in a file of its own, readable by
    the gateway's user alone) and the CA that signed the broker's certificate. ``vitalbridge edge enroll``
    writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    username: Text | None = None
    password_file: Text | None = None
    ca_file: Text | None = None

    @model_validator(mode="after")
    def _login_whole(self) -> BrokerSection:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together")
        return self


class GatewayFile(BaseModel):
    """The gateway config file as written; see ``docs/gateway.md`` for every field."""

    model_config = ConfigDict(extra="forbid", strict=True)

    gateway: Identifier
    mqtt_url: Annotated[str, Field(strict=True), AfterValidator(_mqtt_url)]
    spool: Text = DEFAULT_SPOOL
    status_file: Text | None = None
    batch_interval_s: Annotated[float, Field(ge=0.05, le=3600, allow_inf_nan=False)] = 5.0
    timezone: Annotated[str, Field(strict=True), AfterValidator(_timezone)] | None = None
    utc_offset_s: Annotated[int, Field(ge=-_MAX_UTC_OFFSET_S, le=_MAX_UTC_OFFSET_S)] | None = None
    profile_dirs: list[Text] | None = None
    devices: list[DeviceEntry] | None = None
    pipeline: dict[str, Any] | None = None
    publisher: PublisherSection | None = None
    broker: BrokerSection | None = None


def parse_config(raw: Any, source: str | ConfigSource = "config", *, default_timezone: str | None = None,
                 base_dir: Path | None = None) -> GatewayConfig:
    """Validate a parsed YAML document and return a :class:`GatewayConfig`; :class:`ConfigError` if wrong.

    ``default_timezone`` applies when the file names neither ``timezone`` nor ``utc_offset_s``;
    relative ``profile_dirs`` are taken from ``base_dir`` (the config file's folder) when given.
    """
    origin = source if isinstance(source, ConfigSource) else ConfigSource(source)
    if not isinstance(raw, dict):
        raise origin.error((), "expected a mapping of settings (gateway:, mqtt_url:, devices: ...) at the top level")
    try:
        model = validate(GatewayFile, raw, file=origin.file, document=origin.document)
    except UserFileError as exc:
        raise ConfigError(exc.problems) from None
    problems: list[FileProblem] = []
    if model.timezone is not None and model.utc_offset_s is not None:
        problems.append(origin.problem(("utc_offset_s",), "give either timezone (e.g. Europe/Berlin, with daylight "
                                       "saving) or the older fixed utc_offset_s, not both; remove utc_offset_s"))
    seen: dict[str, int] = {}
    for index, entry in enumerate(model.devices or ()):
        if entry.id in seen:
            problems.append(origin.problem(("devices", index, "id"),
                                           f"device id {entry.id!r} is used twice (also devices[{seen[entry.id]}])"))
        seen.setdefault(entry.id, index)
    from edge.pipeline import pipeline_problems  # numpy and scipy: only when a config is checked

    problems += pipeline_problems(model.pipeline, file=origin.file, document=origin.document)
    if problems:
        raise ConfigError(problems)
    timezone = model.timezone
    if timezone is None and model.utc_offset_s is None:
        timezone = default_timezone
    dirs = [Path(d) for d in model.profile_dirs or ()]
    if base_dir is not None:
        dirs = [d if d.is_absolute() else base_dir / d for d in dirs]

    def beside(name: str | None) -> str | None:  # a file named relative to the config's folder
        if name is None or base_dir is None or Path(name).is_absolute():
            return name
        return str(base_dir / name)

    broker = model.broker or BrokerSection()
    return GatewayConfig(
        gateway=model.gateway,
        mqtt_url=model.mqtt_url,
        spool=model.spool,
        batch_interval_s=float(model.batch_interval_s),
        utc_offset_s=model.utc_offset_s,
        devices=tuple(
            DeviceConfig(id=e.id, patient=e.patient, profile=e.profile, transport=e.transport, address=e.address,
                         options=dict(e.options or {}))
            for e in model.devices or ()
        ),
        pipeline=dict(model.pipeline or {}),
        timezone=timezone,
        profile_dirs=tuple(str(d) for d in dirs),
        status_file=model.status_file,
        publisher=model.publisher.model_dump(exclude_none=True) if model.publisher is not None else {},
        broker_username=broker.username,
        broker_password_file=beside(broker.password_file),
        broker_ca_file=beside(broker.ca_file),
        source=origin,
    )


@dataclass(frozen=True)
class BrokerLogin:
    """The broker login and trust a gateway config names, files read."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None


def broker_login(config: GatewayConfig) -> BrokerLogin:
    """Read the password file of ``config``'s ``broker`` section; :class:`ConfigError` names the field when
    a file named there cannot be read (or the password file is empty)."""
    password = None
    if config.broker_password_file is not None:
        where = config.where(("broker", "password_file"))
        try:
            # Only the line end goes: spaces may be part of a password.
            password = Path(config.broker_password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable text"
            raise where.error(("broker", "password_file"), f"cannot read {config.broker_password_file}: {reason}"
                              + ("; run the gateway as the user `vitalbridge edge enroll` gave the file to"
                                 if isinstance(exc, PermissionError) else "")) from None
        if not password:
            raise where.error(("broker", "password_file"), f"{config.broker_password_file} is empty; enrol the "
                              "gateway again (`vitalbridge edge enroll`)")
    if config.broker_ca_file is not None and not Path(config.broker_ca_file).is_file():
        raise config.where(("broker", "ca_file")).error(("broker", "ca_file"),
                                                        f"{config.broker_ca_file}: no such file")
    return BrokerLogin(config.broker_username, password, config.broker_ca_file)


def load_config(path: Path) -> GatewayConfig:
    """Read and validate the YAML config at ``path``; :class:`ConfigError` names file, line and field.

    Without ``timezone`` or ``utc_offset_s`` in the file, the machine's time zone is used.
    """
    try:
        document = read_yaml(path)
    except UserFileError as exc:
        raise ConfigError(exc.problems or str(exc).replace(
            ": no such file", ": no such file (gateway config); create one with `vitalbridge edge init`")) from None
    return parse_config(document.data, ConfigSource(str(path), document), default_timezone=system_timezone(),
                        base_dir=path.parent)
