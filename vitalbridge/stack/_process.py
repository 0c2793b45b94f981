"""A service started as a child process: free ports, readiness polling, clean stop."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ServiceProcess", "ServiceUser", "StackError", "find_binary", "free_port"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A service could not be found, started or reached; the message says what to do."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, package: str) -> str:
    """Return the path of executable ``name`` (also looked up in sbin), or raise naming ``package``."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    path = shutil.which(name, path=search)
    if path is None:
        raise StackError(
            f"{name} is not installed: install the Debian package '{package}' "
            f"(sudo apt-get install {package}), or point VitalBridge at a running server instead"
        )
    return path


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """An unprivileged account a service runs as when the stack is started by root (PostgreSQL refuses root)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def lookup(cls, *names: str) -> ServiceUser:
        """The first of ``names`` that exists on this system; raises :class:`StackError` when none does."""
        for name in names:
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(name, entry.pw_uid, entry.pw_gid)
        raise StackError(f"none of the users {', '.join(names)} exists to run the service as (it refuses root)")

    def popen_args(self) -> dict[str, Any]:
        """Arguments that make ``subprocess`` run a child as this user, with no supplementary groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: Path) -> None:
        """Make ``path`` (a file or a directory, not its contents) belong to this user."""
        os.chown(path, self.uid, self.gid)


def _die_with_parent(signum: int = signal.SIGTERM) -> None:
    # Linux only: the child gets its stop signal if the parent dies without cleaning up (kill -9,
    # crash). subprocess switches user before this runs, so a change of user does not clear it.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


class ServiceProcess:
    """One child process with a log file, a readiness probe and a clean stop."""

    def __init__(self, name: str, argv: list[str], log_path: Path, ready: Callable[[], bool], *,
                 stop_signal: int = signal.SIGTERM, user: ServiceUser | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self._argv = argv
        self._log_path = log_path
        self._ready = ready
        self._stop_signal = stop_signal
        self._user = user
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the process and wait until its readiness probe passes."""
        log_file = self._log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(_die_with_parent, self._stop_signal),
                cwd=self._cwd,
                **(self._user.popen_args() if self._user is not None else {}),
            )
        finally:
            log_file.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {self._process.returncode} while starting; "
                    f"its log ({self._log_path}) ends with:\n{self.log_tail()}"
                )
            if self._ready():
                log.info("%s is ready (pid %d)", self.name, self._process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise StackError(f"{self.name} did not answer within {timeout_s:g} s; log:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return None if self._process is None else self._process.pid

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the service's log."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self, timeout_s: float = 10.0) -> None:
        """Kill the process with SIGKILL, without giving it a chance to clean up (for fault tests)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process: its stop signal (SIGTERM unless told), then SIGKILL if it has not exited in time."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(self._stop_signal)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop on %s; killing it", self.name, signal.Signals(self._stop_signal).name)
            process.kill()
            process.wait(timeout_s)
