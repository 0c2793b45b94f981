"""The durable spool: every batch is on disk before it is sent, and leaves only once acknowledged.

SQLite in WAL mode with full sync: a batch appended survives a crash or power cut. The spool
also owns the gateway's batch sequence number, so ``(gateway, seq)`` stays unique across restarts.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["BatchSpool", "SpoolFullError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    samples INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('bytes', 0);
"""


class SpoolFullError(RuntimeError):
    """The spool holds ``max_bytes`` already; the batch was not accepted."""


class BatchSpool:
    """Batches waiting to be published, oldest first, at ``path`` (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str, *, max_bytes: int = 512 * 1024 * 1024) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.max_bytes = max_bytes

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def append(self, build: Callable[[int], bytes], created_ns: int, samples: int = 0) -> int:
        """Allocate the next sequence number, store ``build(seq)`` under it, return ``seq``.

        ``samples`` is how many values the batch carries (kept for the published counters).

        Raises :class:`SpoolFullError` when the spool is full (nothing is stored or consumed).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._meta("next_seq")
                payload = build(seq)
                stored = self._meta("bytes")
                if stored + len(payload) > self.max_bytes:
                    raise SpoolFullError(
                        f"spool holds {stored} bytes; a {len(payload)} byte batch would pass {self.max_bytes}"
                    )
                self._db.execute(
                    "INSERT INTO batches (seq, payload, samples, created_ns) VALUES (?, ?, ?, ?)",
                    (seq, payload, samples, created_ns),
                )
                self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'next_seq'")
                self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'bytes'", (len(payload),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return seq

    def pending(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Up to ``limit`` unacknowledged batches, oldest first, as ``(seq, payload)``."""
        with self._lock:
            rows = self._db.execute("SELECT seq, payload FROM batches ORDER BY seq LIMIT ?", (limit,))
            return [(int(seq), bytes(payload)) for seq, payload in rows.fetchall()]

    def acknowledge(self, seq: int) -> int:
        """Drop batch ``seq``, which the broker has; returns how many values it carried (0 if gone)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT length(payload), samples FROM batches WHERE seq = ?", (seq,)
            ).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                self._db.execute("UPDATE meta SET value = value - ? WHERE key = 'bytes'", (int(row[0]),))
            self._db.execute("COMMIT")
        return 0 if row is None else int(row[1])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM batches").fetchone()[0])

    @property
    def stored_bytes(self) -> int:
        """Bytes of payload waiting in the spool."""
        with self._lock:
            return self._meta("bytes")

    @property
    def next_seq(self) -> int:
        """The sequence number the next batch will get."""
        with self._lock:
            return self._meta("next_seq")
