"""PostgreSQL on a free loopback port: a cluster made by ``initdb``, a generated config, one database.

The server binaries are not on ``PATH`` on Debian (they live in ``/usr/lib/postgresql/<version>/bin``),
so :func:`find_postgres_bindir` looks there too. ``initdb`` and ``postgres`` refuse to run as root: a
stack started by root runs them as the user ``postgres`` (made by the Debian package), with the
cluster in a private directory that user owns.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from vitalbridge.stack._process import ServiceProcess, ServiceUser, StackError, free_port

__all__ = ["PostgreSQL", "find_postgres_bindir", "postgres_accepts"]

_PACKAGE = "postgresql"
_SUPERUSER = "vitalbridge"
_SOCKET_PATH_MAX = 100  # a unix socket path is at most 107 bytes; the socket's own name takes 15 of them
_SEARCH_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def _version_key(bindir: Path) -> tuple[int, ...]:
    # The version names the directory above bin/: 15, 9.6, pgsql-16.
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name))


def find_postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (the newest version when several are installed).

    ``PATH`` first (distributions that put them there), then ``pg_config --bindir``, then the
    versioned directories of Debian (``/usr/lib/postgresql/N/bin``) and RHEL (``/usr/pgsql-N/bin``).
    Raises :class:`StackError` naming the package to install.
    """
    on_path = shutil.which("initdb")
    if on_path is not None and _has_server(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True,
                                         timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            bindir = Path()
        if _has_server(bindir):
            return bindir
    candidates = [path for pattern in _SEARCH_GLOBS for path in Path("/").glob(pattern.lstrip("/"))
                  if _has_server(path)]
    if not candidates:
        raise StackError(
            f"the PostgreSQL server is not installed (no initdb and postgres found on PATH or in "
            f"/usr/lib/postgresql/*/bin): install the Debian package '{_PACKAGE}' (sudo apt-get install "
            f"{_PACKAGE}), or point VitalBridge at a running server instead"
        )
    return max(candidates, key=_version_key)


def postgres_accepts(conninfo: str, timeout_s: float = 1.0) -> bool:
    """Return True when the server at ``conninfo`` accepts a connection (it refuses while starting up)."""
    try:
        with psycopg.connect(conninfo, connect_timeout=max(1, round(timeout_s))):
            return True
    except psycopg.Error:
        return False


class PostgreSQL:
    """A PostgreSQL server on ``127.0.0.1:port`` with one database, ``database``, for the superuser ``vitalbridge``.

    Clients authenticate by ``trust`` on loopback only (a throwaway local cluster, like the other
    services of the stack). Durability is traded for speed (``fsync = off``): a killed server
    loses nothing, a power cut would, and the cluster lives in a run directory anyway.
    ``timezone`` is the server's session time zone, which decides the zone of the datetimes
    clients read back; tests set one far from UTC so that code assuming UTC fails there.

    Started as root, the server runs as ``service_user`` (default: ``postgres``, else ``nobody``),
    and the cluster lives in a private directory that user owns (``run_dir/cluster`` links to it);
    :meth:`stop` removes that directory. Otherwise the cluster is ``run_dir/cluster`` and stays.
    """

    def __init__(self, run_dir: Path, port: int | None = None, *, database: str = "vitalbridge",
                 timezone: str = "UTC", service_user: str | None = None) -> None:
        self.run_dir = run_dir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.database = database
        self.timezone = timezone
        self._service_user_name = service_user
        self._user: ServiceUser | None = None
        self._private_dir: Path | None = None
        self._base: Path | None = None
        self._process: ServiceProcess | None = None

    # -- where things are --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database (``postgresql+psycopg://vitalbridge@127.0.0.1:PORT/vitalbridge``)."""
        return self.database_url(self.database)

    def database_url(self, name: str) -> str:
        """SQLAlchemy URL of database ``name`` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{_SUPERUSER}@{self.host}:{self.port}/{name}"

    def conninfo(self, name: str = "postgres") -> str:
        """libpq connection string for database ``name`` (``postgres`` always exists)."""
        return f"host={self.host} port={self.port} user={_SUPERUSER} dbname={name}"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (valid once started)."""
        if self._base is None:
            raise RuntimeError("PostgreSQL has not been started")
        return self._base / "data"

    def config_text(self, socket_dir: Path | None) -> str:
        """The generated postgresql.conf (it replaces the one initdb writes)."""
        sockets = "" if socket_dir is None else str(socket_dir)
        return "\n".join(
            [
                f"listen_addresses = '{self.host}'",
                f"port = {self.port}",
                f"unix_socket_directories = '{sockets}'",
                "max_connections = 100",
                "shared_buffers = 32MB",
                "dynamic_shared_memory_type = posix",
                # A throwaway cluster: what a killed process leaves is still in the page cache.
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                f"timezone = '{self.timezone}'",
                "log_timezone = 'UTC'",
                "datestyle = 'iso, mdy'",
                "lc_messages = 'C'",
                "default_text_search_config = 'pg_catalog.english'",
                "logging_collector = off",
                "log_min_messages = warning",
                "",
            ]
        )

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """initdb a new cluster (the first time), start ``postgres``, wait for it and create the database."""
        bindir = find_postgres_bindir()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_base()
        assert self._base is not None
        data = self._base / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(bindir, data)
        socket_dir: Path | None = self._base / "socket"
        if len(str(socket_dir)) > _SOCKET_PATH_MAX:
            socket_dir = None  # too long for a unix socket path: TCP only
        else:
            (self._base / "socket").mkdir(exist_ok=True)
            self._give(self._base / "socket")
        config = data / "postgresql.conf"
        config.write_text(self.config_text(socket_dir))
        self._give(config)
        (self.run_dir / "postgresql.conf").write_text(self.config_text(socket_dir))  # a copy to read
        self._process = ServiceProcess(
            "postgres",
            [str(bindir / "postgres"), "-D", str(data)],
            self.run_dir / "postgres.log",
            lambda: postgres_accepts(self.conninfo()),
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for every client to leave
            user=self._user,
            cwd=self._base,
        )
        self._process.start(timeout_s=60.0)
        self.create_database(self.database, exist_ok=True)

    def _prepare_base(self) -> None:
        if self._base is not None:
            return
        if os.geteuid() != 0:
            self._base = self.run_dir
            return
        names = (self._service_user_name,) if self._service_user_name else ("postgres", "nobody")
        self._user = ServiceUser.lookup(*names)
        # The run directory may sit under a directory only root can enter (pytest's is 0700).
        self._private_dir = Path(tempfile.mkdtemp(prefix="vitalbridge-pg-"))
        self._give(self._private_dir)
        self._base = self._private_dir
        link = self.run_dir / "cluster"
        if not link.exists():
            link.symlink_to(self._private_dir, target_is_directory=True)

    def _give(self, path: Path) -> None:
        if self._user is not None:
            self._user.give(path)

    def _initdb(self, bindir: Path, data: Path) -> None:
        argv = [str(bindir / "initdb"), "-D", str(data), "-U", _SUPERUSER, "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--no-sync"]
        completed = subprocess.run(
            argv, cwd=self._base, capture_output=True, text=True, timeout=300,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
            **(self._user.popen_args() if self._user is not None else {}),
        )
        (self.run_dir / "initdb.log").write_text(completed.stdout + completed.stderr)
        if completed.returncode != 0:
            tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-10:])
            raise StackError(f"initdb exited with code {completed.returncode}:\n{tail}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are rolled back); remove a private cluster directory."""
        if self._process is not None:
            self._process.stop()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            (self.run_dir / "cluster").unlink(missing_ok=True)
            self._private_dir = None
            self._base = None

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would (for fault tests)."""
        if self._process is not None:
            self._process.kill()

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.running

    # -- databases ----------------------------------------------------------------------------------
    def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            elif not exist_ok:
                raise StackError(f"database {name!r} already exists")
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, disconnecting whoever is still connected to it."""
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
