"""Mosquitto + InfluxDB (+ PostgreSQL on request) together, as a context manager that always stops what it started."""

from __future__ import annotations

import shutil
import signal
import tempfile
import types
from pathlib import Path
from typing import TYPE_CHECKING

from vitalbridge.stack._influxd import InfluxAccounts, InfluxDB
from vitalbridge.stack._mosquitto import BrokerSecurity, Mosquitto
from vitalbridge.stack._postgres import PostgreSQL
from vitalbridge.stack._process import StackError

if TYPE_CHECKING:
    from cloud.broker import BrokerAccounts

__all__ = ["LocalStack"]


class LocalStack:
    """Start the services VitalBridge needs on loopback; ``with LocalStack() as stack: ...``.

    ``run_dir`` holds the generated configs, logs and data; a temporary directory (removed on
    stop) is used when none is given. SIGTERM is turned into a clean stop while the stack runs.
    PostgreSQL is started only when asked for (``postgres=True``); the cloud's default store is a
    SQLite file. ``postgres_timezone`` is its server time zone.

    ``secure=True`` is the secure profile: ``vitalbridge cloud init-pki`` runs on ``pki_dir``
    (default ``run_dir/pki``; an existing CA there is kept), Mosquitto listens with TLS only and
    refuses anonymous clients, accounts and ACLs kept by its dynamic-security plugin (the ingest's
    account from the PKI directory; gateways added through :meth:`broker_accounts`), and influxd
    requires a user (:attr:`influx_accounts`; :meth:`add_influx_database` makes a database they
    may use).
    """

    def __init__(self, run_dir: Path | None = None, *, mqtt: bool = True, influx: bool = True,
                 postgres: bool = False, postgres_timezone: str = "UTC", secure: bool = False,
                 pki_dir: Path | None = None) -> None:
        self._own_dir = run_dir is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="vitalbridge-")) if run_dir is None else run_dir
        self.secure = secure
        self.pki_dir = pki_dir if pki_dir is not None else self.run_dir / "pki"
        security = None
        if secure:
            security = BrokerSecurity(ca_file=self.pki_dir / "ca.pem", cert_file=self.pki_dir / "broker.pem",
                                      key_file=self.pki_dir / "broker.key",
                                      dynsec_file=self.pki_dir / "dynamic-security.json")
        self.mosquitto = Mosquitto(self.run_dir / "mosquitto", security=security) if mqtt else None
        self.influxdb = InfluxDB(self.run_dir / "influxdb", auth=secure) if influx else None
        self.postgres = PostgreSQL(self.run_dir / "postgresql", timezone=postgres_timezone) if postgres else None
        self._previous_sigterm: object = None

    @property
    def mqtt_url(self) -> str:
        """URL of the broker (``mqtt://127.0.0.1:PORT``)."""
        if self.mosquitto is None:
            raise RuntimeError("this stack was made without Mosquitto")
        return self.mosquitto.url

    @property
    def influx_url(self) -> str:
        """URL of InfluxDB's HTTP API."""
        if self.influxdb is None:
            raise RuntimeError("this stack was made without InfluxDB")
        return self.influxdb.url

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients of the secure broker trust."""
        if not self.secure:
            raise RuntimeError("only the secure profile has a CA")
        return self.pki_dir / "ca.pem"

    def ingest_credentials(self) -> tuple[str, str]:
        """The ingest's broker account ``(username, password)`` (secure profile)."""
        from cloud.broker import read_credentials

        return read_credentials(self.pki_dir / "ingest.json")

    def broker_accounts(self) -> BrokerAccounts:
        """A :class:`cloud.broker.BrokerAccounts` for this broker (secure profile): gateway accounts."""
        from cloud.broker import BrokerAccounts

        return BrokerAccounts(self.pki_dir, self.mqtt_url)

    @property
    def influx_accounts(self) -> InfluxAccounts:
        """InfluxDB's admin, writer and reader accounts (secure profile, once started)."""
        if self.influxdb is None or self.influxdb.accounts is None:
            raise RuntimeError("only a started secure stack with InfluxDB has InfluxDB accounts")
        return self.influxdb.accounts

    def add_influx_database(self, db: str) -> None:
        """Create InfluxDB database ``db`` for the writer and the reader (secure profile; else a no-op)."""
        if self.influxdb is not None:
            self.influxdb.add_database(db)

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the PostgreSQL database (``postgresql+psycopg://...``)."""
        if self.postgres is None:
            raise RuntimeError("this stack was made without PostgreSQL")
        return self.postgres.url

    def start(self) -> LocalStack:
        """Start every configured service; on any failure, stop those already started."""
        try:
            if self.secure and self.mosquitto is not None:
                self._init_pki()
            if self.mosquitto is not None:
                self.mosquitto.start()
            if self.influxdb is not None:
                self.influxdb.start()
            if self.postgres is not None:
                self.postgres.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _init_pki(self) -> None:
        import datetime as dt

        try:
            from cloud.broker import PkiError, init_pki
        except ImportError as exc:  # the cloud extra (cryptography) is not installed
            raise StackError(f"the secure profile needs the cloud extra (pip install 'vitalbridge[cloud]'): {exc}") \
                from None
        try:
            init_pki(self.pki_dir, now=dt.datetime.now(dt.UTC))
        except PkiError as exc:
            raise StackError(str(exc)) from None

    def stop(self) -> None:
        """Stop every service (newest first) and remove a temporary run directory."""
        for service in (self.postgres, self.influxdb, self.mosquitto):
            if service is not None:
                service.stop()
        if self._own_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        self._previous_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        except ValueError:  # not in the main thread: leave signals alone
            self._previous_sigterm = None
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]


def _raise_keyboard_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
