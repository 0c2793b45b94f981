"""The patients' thresholds from the cloud, as the gateway keeps them: checked, in force, on disk.

The cloud keeps a retained message on ``vb/v1/{gateway}/cmd/config`` (:mod:`vitals.patient_thresholds`);
the publisher hands each one received to :meth:`PatientThresholdStore.accept`. A message that does
not decode is logged in one line, counted in :attr:`PatientThresholdStore.rejected` and ignored: the
thresholds in force stay. A good one replaces them, is written next to the spool (atomically) by
:meth:`PatientThresholdStore.save` and is read back by :meth:`PatientThresholdStore.load` at the next
start, so a gateway restarted while the broker is out of reach still compresses with them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vitals.patient_thresholds import ThresholdConfig, ThresholdConfigError, decode_threshold_config

__all__ = ["PatientThresholdStore", "thresholds_path"]

log = logging.getLogger(__name__)


def thresholds_path(spool: str) -> Path | None:
    """Where the thresholds in force are kept: ``<spool>.thresholds.json`` (None for an in-memory spool)."""
    if spool == ":memory:":
        return None
    path = Path(spool)
    return path.with_name(path.name + ".thresholds.json")


class PatientThresholdStore:
    """The cloud's threshold message in force (:attr:`config`), and the count of those refused."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.config: ThresholdConfig | None = None
        self.payload: bytes | None = None
        self.rejected = 0
        self.accepted = 0

    def load(self) -> ThresholdConfig | None:
        """Read the thresholds saved by an earlier run (None when there are none or they are unreadable)."""
        if self.path is None:
            return None
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read the saved patient thresholds %s: %s", self.path, exc)
            return None
        try:
            config = decode_threshold_config(payload)
        except ThresholdConfigError as exc:
            log.error("ignoring the saved patient thresholds %s: %s", self.path, exc)
            return None
        self.config, self.payload = config, payload
        log.info("patient thresholds revision %d from %s (saved by an earlier run)", config.revision, self.path)
        return config

    def accept(self, payload: bytes) -> ThresholdConfig | None:
        """Take a message from the cloud: the new thresholds to apply, or None (refused, or no change)."""
        try:
            config = decode_threshold_config(payload)
        except ThresholdConfigError as exc:
            self.rejected += 1
            kept = "none" if self.config is None else f"revision {self.config.revision}"
            log.error("refused patient thresholds from the cloud (%s); keeping %s", exc, kept)
            return None
        if payload == self.payload:
            log.debug("patient thresholds revision %d again; nothing changes", config.revision)
            return None
        self.config, self.payload = config, bytes(payload)
        self.accepted += 1
        log.info("patient thresholds revision %d from the cloud for %d patient(s)", config.revision,
                 len(config.patients))
        return config

    def save(self) -> None:
        """Write the thresholds in force next to the spool (blocking: call it off the event loop)."""
        if self.path is None or self.payload is None:
            return
        partial = self.path.with_name(self.path.name + ".partial")
        with open(partial, "wb") as file:
            file.write(self.payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, self.path)
