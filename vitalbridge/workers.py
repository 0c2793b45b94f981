"""`vitalbridge cloud ingest --workers N`: N ingest worker processes on one host, kept running.

Each worker is a ``vitalbridge cloud ingest`` process of its own (Python runs one core per
process), configured through the ``VB_*`` environment with its own worker index, so its client id
is its own and the broker's shared subscription spreads the gateways' messages over all of them.
A worker that exits is started again with backoff; SIGINT or SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from cloud.service import CloudConfig

__all__ = ["run_workers", "worker_environment"]

_STOP_GRACE_S = 15.0
_STABLE_S = 60.0


def worker_environment(config: CloudConfig, index: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of worker ``index``: ``config`` as ``VB_*`` variables, its own index and port."""
    environment = dict(os.environ if base is None else base)
    environment.update(config.to_env())
    environment["VB_INGEST_WORKER_INDEX"] = str(index)
    environment["VB_HTTP_PORT"] = str(config.http_port + 1 + index if config.http_port else 0)
    if config.client_id:
        environment["VB_INGEST_CLIENT_ID"] = f"{config.client_id}-{index}"
    return environment


def _start(config: CloudConfig, index: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "import sys; from vitalbridge.cli import main; sys.exit(main())",
               "cloud", "ingest"]
    return subprocess.Popen(command, env=worker_environment(config, index))


def run_workers(config: CloudConfig, count: int) -> int:
    """Run ``count`` workers until a signal; returns the exit status for the command."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    workers = {index: _start(config, index) for index in range(count)}
    started = dict.fromkeys(workers, time.monotonic())
    delays = dict.fromkeys(workers, 1.0)
    restart_at: dict[int, float] = {}
    print(f"VitalBridge cloud (ingest): {count} workers, pids "
          f"{', '.join(str(worker.pid) for worker in workers.values())}", flush=True)
    try:
        while not stop.wait(0.2):
            now = time.monotonic()
            for index, worker in list(workers.items()):
                if index in restart_at:
                    if now >= restart_at[index]:
                        del restart_at[index]
                        workers[index], started[index] = _start(config, index), now
                    continue
                status = worker.poll()
                if status is None:
                    continue
                if now - started[index] > _STABLE_S:
                    delays[index] = 1.0  # it had been running well: this is a new failure, not a loop
                delay = delays[index]
                print(f"vitalbridge cloud ingest: worker {index} exited with status {status}; "
                      f"starting it again in {delay:.0f} s", file=sys.stderr, flush=True)
                restart_at[index] = now + delay
                delays[index] = min(delay * 2, 30.0)
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in workers.values():
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
