"""A service started as a child process: free ports, readiness polling, clean stop."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ServiceProcess", "StackError", "find_binary", "free_port"]

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


def _die_with_parent() -> None:
    # Linux only: the child gets SIGTERM if the parent dies without cleaning up (kill -9, crash).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceProcess:
    """One child process with a log file, a readiness probe and a clean stop."""

    def __init__(self, name: str, argv: list[str], log_path: Path, ready: Callable[[], bool]) -> None:
        self.name = name
        self._argv = argv
        self._log_path = log_path
        self._ready = ready
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
                preexec_fn=_die_with_parent,
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
        """Stop the process: SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop on SIGTERM; killing it", self.name)
            process.kill()
            process.wait(timeout_s)
