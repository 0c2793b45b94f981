"""The cloud service: the ingest worker and the HTTP API, together in one process or apart.

``CloudService(config, api=True, ingest=True)`` runs both (``vitalbridge cloud run``);
``api=False`` is ``vitalbridge cloud ingest`` (it still serves ``/health`` and ``/metrics``) and
``ingest=False`` is ``vitalbridge cloud api``. Every long-running task is supervised: one that
fails is logged with its reason, counted, and restarted with backoff, and ``/health`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import pathlib
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import uvicorn
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from cloud.alerting import (
    AlertClock,
    AlertingContext,
    AlertingPolicy,
    Channel,
    EmailChannel,
    NotifierMetrics,
    NotifierSettings,
    NotifierWorker,
    PolicyError,
    SmtpSettings,
    WebhookChannel,
    load_policy,
)
from cloud.api import create_app, create_ops_app, default_security
from cloud.auth.policy import SecurityContext
from cloud.enrolment import BrokerAccounts, Enrolment, EnrolmentCodes
from cloud.hl7 import (
    BatchForwarder,
    Hl7AlertChannel,
    Hl7Metrics,
    Hl7Sender,
    Hl7SenderSettings,
    MessageHeader,
    MllpClient,
    parse_mllp_url,
)
from cloud.ingest import (
    BrokerUnavailable,
    GatewayConfigPublisher,
    IngestLimits,
    IngestMetrics,
    IngestProcessor,
    IngestStats,
    IngestWorker,
    MqttIngestClient,
    SettingsCache,
    WorkerSettings,
)
from cloud.registry import GatewayBindings, Registry
from cloud.rules import RuleEngine, build_rules, load_rules_file
from cloud.store import Hl7OutboxStore, Retention, SettingsStore, Store, open_store
from cloud.timeseries import InfluxError, InfluxRejected, InfluxV1Client
from device_profiles.userfile import UserFileError
from vitals.endpoints import parse_mqtt_url
from vitals.topics import ALL_DATA, ALL_EVENTS, ALL_SENML, ALL_STATUS, shared_subscription

__all__ = ["CloudConfig", "CloudService", "ConfigError", "ServiceUnavailable", "http_server_options"]

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting (flag or environment variable) that is not usable; the message names it."""


class ServiceUnavailable(RuntimeError):
    """A server the cloud needs (broker, InfluxDB, database) cannot be reached; one plain line says which."""


_ENVIRONMENT = {
    "VB_MQTT_URL": "mqtt_url",
    "VB_INFLUX_URL": "influx_url",
    "VB_INFLUX_DB": "influx_db",
    "VB_INFLUX_TOKEN": "influx_token",
    "VB_INFLUX_USERNAME": "influx_username",
    "VB_INFLUX_PASSWORD": "influx_password",
    "VB_INFLUX_READ_USERNAME": "influx_read_username",
    "VB_INFLUX_READ_PASSWORD": "influx_read_password",
    "VB_MQTT_CA_FILE": "mqtt_ca_file",
    "VB_MQTT_USERNAME": "mqtt_username",
    "VB_MQTT_PASSWORD": "mqtt_password",
    "VB_BROKER_PKI_DIR": "broker_pki_dir",
    "VB_DATABASE_URL": "database_url",
    "VB_HTTP_HOST": "http_host",
    "VB_HTTP_PORT": "http_port",
    "VB_INGEST_CLIENT_ID": "client_id",
    "VB_INGEST_SHARED_GROUP": "shared_group",
    "VB_INGEST_WORKER_INDEX": "worker_index",
    "VB_INGEST_SESSION_EXPIRY_S": "session_expiry_s",
    "VB_GATEWAY_SILENT_S": "gateway_silent_s",
    "VB_INGEST_MAX_MESSAGES": "max_messages",
    "VB_INGEST_MAX_WAIT_MS": "max_wait_ms",
    "VB_INGEST_MAX_INFLIGHT": "max_inflight",
    "VB_INGEST_MAX_VALUES": "max_values",
    "VB_INGEST_STALL_S": "stall_s",
    "VB_DEDUP_HORIZON_DAYS": "dedup_horizon_days",
    "VB_DEAD_LETTER_DAYS": "dead_letter_days",
    "VB_DEAD_LETTER_PAYLOAD_DAYS": "dead_letter_payload_days",
    "VB_DEAD_LETTER_MAX": "dead_letter_max",
    "VB_REGISTRY": "registry",
    "VB_REGISTRY_CACHE_S": "registry_cache_s",
    "VB_AUTH_SECRET": "auth_secret",
    "VB_AUTH_SECRET_FILE": "auth_secret_file",
    "VB_ACCESS_TOKEN_MINUTES": "access_token_minutes",
    "VB_REFRESH_TOKEN_DAYS": "refresh_token_days",
    "VB_AUDIT_DAYS": "audit_days",
    "VB_TLS_CERT": "tls_cert",
    "VB_TLS_KEY": "tls_key",
    "VB_HSTS": "hsts",
    "VB_CORS_ORIGINS": "cors_origins",
    "VB_FORWARDED_ALLOW_IPS": "forwarded_allow_ips",
    "VB_ALERTING_POLICY": "alerting_policy",
    "VB_NOTIFY": "notify",
    "VB_ALERT_TICK_S": "alert_tick_s",
    "VB_NOTIFY_POLL_S": "notify_poll_s",
    "VB_SMTP_HOST": "smtp_host",
    "VB_SMTP_PORT": "smtp_port",
    "VB_SMTP_FROM": "smtp_from",
    "VB_SMTP_USERNAME": "smtp_username",
    "VB_SMTP_PASSWORD": "smtp_password",
    "VB_SMTP_STARTTLS": "smtp_starttls",
    "VB_WEBHOOK_SECRET": "webhook_secret",
    "VB_RULES": "rules_file",
    "VB_HL7_URL": "hl7_url",
    "VB_HL7_ACK_TIMEOUT_S": "hl7_ack_timeout_s",
    "VB_HL7_FACILITY": "hl7_facility",
    "VB_GATEWAY_MQTT_URL": "gateway_mqtt_url",
    "VB_ENROLMENT_CODE_HOURS": "enrolment_code_hours",
    "VB_THRESHOLDS_PUBLISH": "publish_thresholds",
    "VB_THRESHOLDS_EVERY_S": "thresholds_every_s",
}
# Never echoed in an error.
_SECRETS = frozenset({"auth_secret", "influx_password", "influx_read_password", "mqtt_password"})

_FLAGS = {"http_host": "--host", "http_port": "--port", "rules_file": "--rules"}


class CloudConfig(BaseModel):
    """Where the cloud finds its broker, InfluxDB and database, where it listens, and how the ingest behaves.

    :meth:`from_env` reads the ``VB_*`` variables listed in ``_ENVIRONMENT``; flags override them.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = Field("vitalbridge", min_length=1)
    influx_token: str | None = None
    influx_username: str | None = Field(None, min_length=1, description="InfluxDB 1.x user the ingest writes as")
    influx_password: SecretStr | None = None
    influx_read_username: str | None = Field(
        None, min_length=1, description="InfluxDB 1.x user the API reads as (default: influx_username)")
    influx_read_password: SecretStr | None = None
    mqtt_ca_file: str | None = Field(None, description="PEM CA the broker's certificate is checked against "
                                     "(mqtts://; default: the system's CAs)")
    mqtt_username: str | None = Field(None, min_length=1, description="broker account (instead of the URL's)")
    mqtt_password: SecretStr | None = None
    broker_pki_dir: str | None = Field(
        None, description="directory written by `vitalbridge cloud init-pki`: revoking a gateway in the registry "
        "also deletes its broker account (Mosquitto's dynamic-security plugin)")
    database_url: str = "sqlite:///vitalbridge.db"
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    client_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$",
                                  description="MQTT client id; derived from the host name and worker index when unset")
    worker_index: int | None = Field(None, ge=0, le=9999, description="this worker's number among several")
    shared_group: str = Field("ingest", pattern=r"^[A-Za-z0-9_.-]*$", max_length=64,
                              description="shared-subscription group ('' subscribes unshared)")
    session_expiry_s: int = Field(3600, ge=0, le=7 * 24 * 3600,
                                  description="how long the broker keeps a worker's session while it is away")
    gateway_silent_s: float = Field(900.0, gt=0, description="an online gateway silent this long is 'unknown'")
    max_messages: int = Field(1000, ge=1, le=100_000, description="messages per micro-batch")
    max_wait_ms: float = Field(50.0, ge=0, le=10_000, description="how long a micro-batch may wait to fill")
    max_inflight: int = Field(5000, ge=1, le=1_000_000, description="messages received and not yet acknowledged")
    max_values: int = Field(50_000, ge=1, le=16_777_216, description="values one batch may carry")
    stall_s: float = Field(60.0, gt=0, description="a micro-batch held this long is a stall")
    dedup_horizon_days: float = Field(14.0, gt=0)
    dead_letter_days: float = Field(90.0, gt=0)
    dead_letter_payload_days: float = Field(7.0, ge=0)
    dead_letter_max: int = Field(10_000, ge=1)
    rules: list[dict[str, Any]] | None = None
    registry: Literal["enforce", "off"] = Field(
        "enforce", description="enforce: refuse batches of unknown or revoked gateways and of patients not bound "
        "to their gateway; off: take every batch whose topic and body name the same gateway")
    registry_cache_s: float = Field(5.0, ge=0, le=3600, description="how long the ingest trusts a gateway lookup")
    auth_secret: SecretStr | None = Field(None, description="HS256 key of the access tokens (32+ bytes)")
    auth_secret_file: str | None = Field(None, description="a file holding auth_secret")
    access_token_minutes: float = Field(15.0, gt=0, le=24 * 60)
    refresh_token_days: float = Field(14.0, gt=0, le=365)
    audit_days: float = Field(6 * 366.0, gt=0, description="how long audit rows are kept (pruning keeps the chain)")
    tls_cert: str | None = Field(None, description="PEM certificate chain: serve HTTPS (with tls_key)")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert")
    hsts: bool | None = Field(None, description="send Strict-Transport-Security; default: when serving TLS")
    cors_origins: list[str] = Field(default_factory=list, description="origins browsers may call the API from")
    forwarded_allow_ips: str | None = Field(
        None, description="addresses of trusted reverse proxies whose X-Forwarded-For/-Proto are believed")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("auth_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes (e.g. `openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> CloudConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self
    alerting_policy: Path | None = Field(None, description="YAML file: escalation, recipients, inhibition")
    alerting: AlertingPolicy | None = Field(None, description="the policy itself (instead of a file)")
    notify: bool = Field(True, description="run the alert clock and the notifier beside the ingest")
    alert_tick_s: float = Field(5.0, gt=0, le=3600, description="how often alerts move on with the clock")
    notify_poll_s: float = Field(1.0, gt=0, le=3600, description="how often the notifier looks at the outbox")
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_from: str = "vitalbridge@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    webhook_secret: str | None = Field(None, min_length=16, description="HMAC key that signs webhook calls")
    rules_file: str | None = Field(None, description="YAML rules file; unset: the default rule set")
    gateway_mqtt_url: str | None = Field(
        None, description="the broker as gateways reach it, handed out on enrolment; unset: mqtt_url without "
        "its credentials")
    enrolment_code_hours: float = Field(24.0, gt=0, le=30 * 24, description="how long an enrolment code works")
    hl7_url: str | None = Field(None, description="mllp://host:port of an EHR's HL7 v2 receiver: every stored "
                                "batch is queued as an ORU^R01 in its own transaction and sent there")
    hl7_ack_timeout_s: float = Field(30.0, gt=0, le=3600, description="how long the HL7 sender waits for an ACK")
    hl7_facility: str = Field("", max_length=180, description="MSH-4, the sending facility of HL7 messages")

    @field_validator("hl7_url")
    @classmethod
    def _mllp_url(cls, value: str | None) -> str | None:
        if value:
            parse_mllp_url(value)
        return value or None
    publish_thresholds: bool = Field(True, description="keep each gateway's patients' thresholds published "
                                     "(retained, vb/v1/{gateway}/cmd/config) beside the ingest")
    thresholds_every_s: float = Field(5.0, gt=0, le=3600, description="how often the thresholds are reconciled")

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    @field_validator("gateway_mqtt_url")
    @classmethod
    def _gateway_broker_url(cls, value: str | None) -> str | None:
        if value is not None and parse_mqtt_url(value).password is not None:
            raise ValueError("must not carry a password: each gateway gets its own login on enrolment")
        return value

    def gateway_broker_url(self) -> str:
        """The broker address handed to enrolling gateways (never the ingest's credentials)."""
        return self.gateway_mqtt_url or parse_mqtt_url(self.mqtt_url).url

    @field_validator("influx_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> CloudConfig:
        """Defaults, then the environment, then non-None ``overrides`` (flags); raises :class:`ConfigError`."""
        values: dict[str, Any] = {field: environ[name] for name, field in _ENVIRONMENT.items() if name in environ}
        flags = {key: value for key, value in overrides.items() if value is not None}
        values.update(flags)
        try:
            config = cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "?"
            shown = "a hidden value" if field in _SECRETS else repr(error.get("input"))
            raise ConfigError(f"{_source(field, flags)}: {error['msg']} (got {shown})") from None
        if config.rules_file:
            try:
                rules = load_rules_file(pathlib.Path(config.rules_file))
            except UserFileError as exc:
                raise ConfigError(f"{_source('rules_file', flags)}: {exc}") from None
            config.rules = [rule.model_dump(mode="json") for rule in rules]
        return config

    def token_secret(self) -> bytes | None:
        """The access tokens' key: ``auth_secret``, or the contents of ``auth_secret_file``; None when neither
        is set (then the API makes a random key, and tokens end with the process). Raises :class:`ConfigError`."""
        if self.auth_secret is not None:
            return self.auth_secret.get_secret_value().encode()
        if self.auth_secret_file is None:
            return None
        try:
            secret = Path(self.auth_secret_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"VB_AUTH_SECRET_FILE: cannot read {self.auth_secret_file}: {exc.strerror}") from None
        if len(secret) < 32:
            raise ConfigError(f"VB_AUTH_SECRET_FILE: {self.auth_secret_file} holds fewer than 32 bytes")
        return secret

    @property
    def serves_tls(self) -> bool:
        """Whether the API serves HTTPS itself."""
        return self.tls_cert is not None

    def to_env(self) -> dict[str, str]:
        """The ``VB_*`` variables that give another process this configuration (unset fields are left out)."""
        env: dict[str, str] = {}
        for name, field in _ENVIRONMENT.items():
            value = getattr(self, field)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()  # a worker process needs the key itself
            elif isinstance(value, list):
                value = ",".join(value)
            if value is not None:
                env[name] = str(value)
        return env

    def influx_writer(self) -> InfluxV1Client:
        """A client of InfluxDB as the ingest's (writing) user."""
        return InfluxV1Client(self.influx_url, self.influx_db, token=self.influx_token,
                              username=self.influx_username, password=_secret(self.influx_password))

    def influx_reader(self) -> InfluxV1Client:
        """A client of InfluxDB as the API's reading user (the writing user when no reader is set)."""
        if self.influx_read_username is None:
            return self.influx_writer()
        return InfluxV1Client(self.influx_url, self.influx_db, token=self.influx_token,
                              username=self.influx_read_username, password=_secret(self.influx_read_password))

    def ingest_client_id(self) -> str:
        """The MQTT client id: as configured, else ``vitalbridge-ingest-<host>[-<worker index>]``.

        Ids stay the same across restarts (so the broker keeps the session) and differ between
        hosts and worker indexes (so two workers never take each other's session).
        """
        if self.client_id:
            return self.client_id
        host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64] or "host"
        suffix = "" if self.worker_index is None else f"-{self.worker_index}"
        return f"vitalbridge-ingest-{host}{suffix}"

    def subscriptions(self) -> list[str]:
        """The topics the ingest reads: data (native and SenML), status and events, shared with the group's
        other workers."""
        topics = [ALL_DATA, ALL_SENML, ALL_STATUS, ALL_EVENTS]
        return [shared_subscription(topic, self.shared_group) for topic in topics] if self.shared_group else topics

    def alerting_context(self) -> AlertingContext:
        """The alerting policy (from ``alerting``, else the ``alerting_policy`` file, else the defaults)."""
        if self.alerting is not None:
            return AlertingContext(self.alerting)
        if self.alerting_policy is not None:
            try:
                return AlertingContext(load_policy(self.alerting_policy))
            except PolicyError as exc:
                raise ConfigError(f"VB_ALERTING_POLICY: {exc}") from None
        return AlertingContext()

    def worker_settings(self) -> WorkerSettings:
        """The ingest worker's settings."""
        return WorkerSettings(
            max_messages=self.max_messages, max_wait_s=self.max_wait_ms / 1000, stall_s=self.stall_s,
            retention=Retention(
                ingest_log=dt.timedelta(days=self.dedup_horizon_days),
                dead_letter_payload=dt.timedelta(days=self.dead_letter_payload_days),
                dead_letter=dt.timedelta(days=self.dead_letter_days), dead_letter_max_rows=self.dead_letter_max,
            ),
        )


def _source(field: str, flags: Mapping[str, Any]) -> str:
    """The flag or environment variable a setting came from, for error messages."""
    if field in flags:
        return _FLAGS.get(field, f"--{field.replace('_', '-')}")
    return next((name for name, known in _ENVIRONMENT.items() if known == field), field)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class CloudService:
    """Runs the ingest and/or the API until stopped. ``await service.start()`` then ``await service.stop()``."""

    def __init__(self, config: CloudConfig, *, api: bool = True, ingest: bool = True,
                 clock: Callable[[], int] = time.time_ns, broker_accounts: BrokerAccounts | None = None) -> None:
        self.config = config
        # Gateway accounts on the broker (given, or from ``broker_pki_dir``): enrolment hands out their
        # logins, revocation removes them; None: the broker has no per-gateway logins.
        self.broker_accounts = broker_accounts
        self.run_api = api
        self.run_ingest = ingest
        self.clock = clock
        self.registry = CollectorRegistry()
        self.store: Store | None = None
        self.influx: InfluxV1Client | None = None  # the ingest's writer
        self.influx_reader: InfluxV1Client | None = None  # the API's reader (the writer when no reader is set)
        self.processor: IngestProcessor | None = None
        self.worker: IngestWorker | None = None
        self.client: MqttIngestClient | None = None
        self.metrics: IngestMetrics | None = None
        self.security: SecurityContext | None = None
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._failures: dict[str, str] = {}
        self.alerting = config.alerting_context()
        self.notifier: NotifierWorker | None = None
        self.alert_clock: AlertClock | None = None
        self._webhook: WebhookChannel | None = None
        self._hl7_alerts: Hl7AlertChannel | None = None
        self.hl7_sender: Hl7Sender | None = None
        self.config_publisher: GatewayConfigPublisher | None = None

    def now(self) -> dt.datetime:
        """The service clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock() / 1e9, dt.UTC)

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP server."""
        port = self.config.http_port
        if self._server is not None and self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.config.serves_tls else "http"
        return f"{scheme}://{self.config.http_host}:{port}"

    @property
    def stats(self) -> IngestStats:
        """The ingest's counters since start (empty when this process runs no ingest)."""
        return self.worker.stats if self.worker is not None else IngestStats()

    async def start(self) -> None:
        """Open the stores, connect the ingest, serve HTTP; raises :class:`ServiceUnavailable` in one line."""
        config = self.config
        if self.broker_accounts is None and self.run_api:
            self.broker_accounts = _broker_accounts(config)
        try:
            self.store = await asyncio.to_thread(open_store, config.database_url, self.alerting)
        except Exception as exc:
            raise ServiceUnavailable(f"cannot open the database {_safe_url(config.database_url)}: "
                                     f"{str(exc).splitlines()[0][:300]}") from None
        self.influx = config.influx_writer()
        self.influx_reader = self.influx if config.influx_read_username is None else config.influx_reader()
        try:
            await self.influx.create_database()
        except InfluxRejected as exc:
            if exc.status not in (401, 403):
                await self._close()
                raise ServiceUnavailable(str(exc)) from None
            # A user with no admin rights may not create databases: the administrator made it for us.
            log.info("InfluxDB user %s may not create database %s; using it as it is", config.influx_username,
                     config.influx_db)
        except InfluxError as exc:
            await self._close()
            raise ServiceUnavailable(str(exc)) from None
        if self.run_ingest:
            await self._start_ingest()
        if self.run_api:
            self.security = _security(config, self.store, self.broker_accounts)
            app = create_app(self.store, self.influx_reader, health=self.health, stats=lambda: self.stats,
                             registry=self.registry, clock=self.now, gateway_silent_s=config.gateway_silent_s,
                             security=self.security,
                             hsts=config.hsts if config.hsts is not None else config.serves_tls,
                             cors_origins=config.cors_origins, enrolment=Enrolment(
                                 EnrolmentCodes(self.store.engine,
                                                ttl=dt.timedelta(hours=config.enrolment_code_hours)),
                                 broker_url=config.gateway_broker_url(), accounts=self.broker_accounts),
                             rules=build_rules(config.rules), on_settings_saved=self._settings_saved)
            app.state.broker_accounts = self.broker_accounts  # gateway accounts for routes that make them
            self._tasks.append(asyncio.create_task(self._supervise("audit-retention", self._audit_retention, None),
                                                   name="audit-retention"))
        else:
            app = create_ops_app(self.health, self.registry)
        server_config = uvicorn.Config(app, **http_server_options(config))
        self._server = _QuietServer(server_config)
        http = asyncio.create_task(self._server.serve(), name="http")
        self._tasks.append(http)
        while not self._server.started:
            if http.done():
                await self.stop()
                error = http.exception()
                raise ServiceUnavailable(f"cannot serve HTTP on {config.http_host}:{config.http_port}: "
                                         f"{error or 'the server stopped'}")
            await asyncio.sleep(0.02)
        log.info("cloud HTTP on %s", self.api_url)

    async def _start_ingest(self) -> None:
        config = self.config
        assert self.store is not None and self.influx is not None
        # The alert lifecycle shows a pending alert while a rule's `for` delay runs (and closes it unfired).
        engine = RuleEngine(build_rules(config.rules), pending=True)
        bindings = (GatewayBindings(Registry(self.store.engine), ttl_s=config.registry_cache_s).lookup
                    if config.registry == "enforce" else None)
        header = MessageHeader(sending_facility=config.hl7_facility)
        # Each patient is judged with their own settings in force, whichever process saved them.
        settings = SettingsStore(self.store.engine)
        self.processor = IngestProcessor(self.store, self.influx, engine, clock=self.clock,
                                         limits=IngestLimits(max_values=config.max_values),
                                         gateway_silent_s=config.gateway_silent_s, bindings=bindings,
                                         outbound=BatchForwarder(header) if config.hl7_url else None,
                                         settings=SettingsCache(settings, engine))
        self.metrics = IngestMetrics(self.registry)
        self.client = MqttIngestClient(config.mqtt_url, config.subscriptions(), client_id=config.ingest_client_id(),
                                       max_inflight=config.max_inflight, session_expiry_s=config.session_expiry_s,
                                       ca_file=config.mqtt_ca_file, username=config.mqtt_username,
                                       password=_secret(config.mqtt_password))
        try:
            await self.client.start()
        except BrokerUnavailable as exc:
            await self._close()
            raise ServiceUnavailable(str(exc)) from None
        self.worker = IngestWorker(self.client, self.processor, self.metrics, config.worker_settings())
        self._tasks.append(asyncio.create_task(self._supervise("ingest", self.worker.run, self._reconnect),
                                               name="ingest"))
        self._tasks.append(asyncio.create_task(self._supervise("upkeep", self.worker.upkeep, None), name="upkeep"))
        if config.hl7_url:
            self._start_hl7(config.hl7_url)
        if config.publish_thresholds:
            self.config_publisher = GatewayConfigPublisher(settings, engine, self.client.publish_retained,
                                                           clock=self.now, every_s=config.thresholds_every_s)
            self._tasks.append(asyncio.create_task(
                self._supervise("gateway-thresholds", self.config_publisher.run, None), name="gateway-thresholds"))
        if config.notify:
            self._start_alerting()

    def _start_hl7(self, url: str) -> None:
        # Observations reach the outbox in the ingest's transaction; this sends them, in order.
        assert self.store is not None
        client = MllpClient(parse_mllp_url(url), ack_timeout_s=self.config.hl7_ack_timeout_s)
        self.hl7_sender = Hl7Sender(Hl7OutboxStore(self.store.engine), client, clock=self.now,
                                    settings=Hl7SenderSettings(poll_s=self.config.notify_poll_s),
                                    metrics=Hl7Metrics(self.registry))
        self._tasks.append(asyncio.create_task(self._supervise("hl7-sender", self.hl7_sender.run, None),
                                               name="hl7-sender"))

    def _start_alerting(self) -> None:
        config = self.config
        assert self.store is not None
        channels: dict[str, Channel] = {}
        if config.smtp_host:
            channels["email"] = EmailChannel(SmtpSettings(
                host=config.smtp_host, port=config.smtp_port, sender=config.smtp_from, username=config.smtp_username,
                password=config.smtp_password, starttls=config.smtp_starttls), clock=self.now)
        if config.webhook_secret:
            self._webhook = WebhookChannel(config.webhook_secret.encode(), clock=lambda: self.clock() / 1e9)
            channels["webhook"] = self._webhook
        # Recipients written mllp://host:port get alerts as PCD-04 ORU^R40.
        self._hl7_alerts = Hl7AlertChannel(clock=self.clock, header=MessageHeader(sending_facility=config.hl7_facility),
                                           ack_timeout_s=config.hl7_ack_timeout_s)
        channels["hl7"] = self._hl7_alerts
        self.alert_clock = AlertClock(self.store, clock=self.now, every_s=config.alert_tick_s)
        self.notifier = NotifierWorker(self.store, channels, clock=self.now,
                                       group_window=self.alerting.policy.group_window,
                                       settings=NotifierSettings(poll_s=config.notify_poll_s),
                                       metrics=NotifierMetrics(self.registry))
        self._tasks.append(asyncio.create_task(self._supervise("alert-clock", self.alert_clock.run, None),
                                               name="alert-clock"))
        self._tasks.append(asyncio.create_task(self._supervise("notifier", self.notifier.run, None), name="notifier"))

    def _settings_saved(self, _patient: str, _version: int) -> None:
        # A publisher in this process sends the gateway its new thresholds now; others notice on their next pass.
        if self.config_publisher is not None:
            self.config_publisher.nudge()

    async def _audit_retention(self) -> None:
        # Hourly: drop audit rows past their retention (the chain's anchor moves with them).
        assert self.security is not None
        keep = dt.timedelta(days=self.config.audit_days)
        while True:
            removed = await asyncio.to_thread(self.security.audit.prune, self.security.clock() - keep)
            if removed:
                log.info("audit retention: removed %d rows older than %.0f days", removed, self.config.audit_days)
            await asyncio.sleep(3600)

    async def _reconnect(self) -> None:
        # A failed loop may hold messages it never acknowledged: a new session gets them redelivered.
        assert self.client is not None
        await self.client.stop()
        await self.client.start()

    async def _supervise(self, name: str, body: Callable[[], Awaitable[None]],
                         recover: Callable[[], Awaitable[None]] | None) -> None:
        delay = 1.0
        while True:
            try:
                await body()
                reason = "it returned"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.error("%s task failed (%s); restarting in %.0f s", name, reason, delay, exc_info=exc)
            else:
                log.error("%s task ended unexpectedly; restarting in %.0f s", name, delay)
            self._failures[name] = reason
            if self.worker is not None:
                self.worker.restarts += 1
            if self.metrics is not None:
                self.metrics.restarts.inc()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)
            if recover is not None:
                try:
                    await recover()
                except Exception as exc:
                    log.error("%s could not recover (%s)", name, exc)
                    continue
            self._failures.pop(name, None)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, details)``: ready while every task runs, the broker is connected and nothing stalls."""
        details: dict[str, Any] = {}
        ready = True
        if self.worker is not None:
            ingest = self.worker.health()
            ingest["failed_tasks"] = dict(self._failures)
            details["ingest"] = ingest
            ready = ingest["broker_connected"] and not ingest["stalled"] and not self._failures
        if self.hl7_sender is not None:
            # A receiver that is down holds messages in the outbox (shown here), it does not stop the ingest.
            details["hl7"] = self.hl7_sender.health()
        dead = [task.get_name() for task in self._tasks if task.done()]
        if dead:
            details["stopped_tasks"] = dead
            ready = False
        return ready, details

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every message already received has been handled."""
        if self.worker is None:
            return
        deadline = time.monotonic() + timeout_s
        while not self.worker.idle and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop serving, disconnect and close the stores."""
        if self._server is not None:
            self._server.should_exit = True
        for task in reversed(self._tasks):
            if task.get_name() != "http":
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._close()

    async def _close(self) -> None:
        if self._webhook is not None:
            await self._webhook.aclose()
        if self._hl7_alerts is not None:
            await self._hl7_alerts.aclose()
        if self.client is not None:
            await self.client.stop()
        if self.influx_reader is not None and self.influx_reader is not self.influx:
            await self.influx_reader.aclose()
        if self.influx is not None:
            await self.influx.aclose()
        if self.store is not None:
            self.store.close()


def http_server_options(config: CloudConfig) -> dict[str, Any]:
    """uvicorn's settings for ``config``: address, TLS files, and which proxies' forwarded headers to believe."""
    options: dict[str, Any] = {"host": config.http_host, "port": config.http_port, "log_level": "warning",
                               "lifespan": "off", "server_header": False}
    if config.serves_tls:
        options.update(ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key)
    if config.forwarded_allow_ips:
        options.update(proxy_headers=True, forwarded_allow_ips=config.forwarded_allow_ips)
    else:
        options.update(proxy_headers=False)  # a client's own X-Forwarded-For must not choose its audited address
    return options


def _broker_accounts(config: CloudConfig) -> BrokerAccounts | None:
    """The broker's gateway accounts when ``broker_pki_dir`` is set (its files are checked now)."""
    if config.broker_pki_dir is None:
        return None
    from cloud.broker import BrokerAccounts as DynamicSecurityAccounts
    from cloud.broker import BrokerAccountsError

    try:
        return DynamicSecurityAccounts(pathlib.Path(config.broker_pki_dir), config.mqtt_url)
    except BrokerAccountsError as exc:
        raise ServiceUnavailable(f"broker_pki_dir: {exc}") from None


def _security(config: CloudConfig, store: Store, accounts: BrokerAccounts | None) -> SecurityContext:
    context: SecurityContext = default_security(
        store, secret=config.token_secret(), token_ttl=dt.timedelta(minutes=config.access_token_minutes),
        refresh_ttl=dt.timedelta(days=config.refresh_token_days))
    if accounts is not None:
        context = dataclasses.replace(context, on_gateway_revoked=accounts.revoke_gateway)
    if config.token_secret() is None:
        log.warning("no VB_AUTH_SECRET or VB_AUTH_SECRET_FILE: access tokens are signed with a random key and "
                    "stop working when this process ends (and are not accepted by other API processes)")
    return context


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _safe_url(url: str) -> str:
    # Never print a password: keep the scheme and what follows the credentials.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else url
