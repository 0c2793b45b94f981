"""The durable spool: every batch is on disk before it is sent, and leaves only once the cloud has it.

SQLite in WAL mode with full sync: a batch appended survives a crash or power cut. The spool owns
the gateway's batch identity: a random *epoch* made when the spool file is created (a reinstalled
gateway, a new SD card: a new epoch) and a sequence number that grows within it, so
``(gateway, epoch, seq)`` stays unique across restarts and reinstalls.

A batch leaves the spool when the cloud names it in an end-to-end acknowledgement
(:mod:`vitals.acks`), stored or refused for good; the broker's PUBACK only marks it *sent*. When the
spool reaches its quota it drops old batches by priority (:mod:`edge.priority`) to make room; when
the disk is full it refuses the batch with :class:`SpoolDiskFullError`. Methods are thread-safe
(the publisher calls them from a worker thread).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.priority import SpoolPriority

__all__ = [
    "BatchSpool",
    "Confirmation",
    "EvictedBatch",
    "SpoolDiskFullError",
    "SpoolFullError",
    "SpoolReceipt",
    "SpooledBatch",
    "new_epoch",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    samples INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('bytes', 0);
"""

# Columns added after the first release; a spool file from before gets them on open.
_ADDED_COLUMNS = {
    "priority": "INTEGER NOT NULL DEFAULT 0",  # SpoolPriority; 0 (ALERT, never dropped) for old rows
    "sent_ns": "INTEGER",  # when the broker acknowledged the last send (publisher's clock); NULL: to send
    "sends": "INTEGER NOT NULL DEFAULT 0",  # how many sends the broker acknowledged
}

_INDEXES = """
CREATE INDEX IF NOT EXISTS batches_created ON batches (created_ns);
CREATE INDEX IF NOT EXISTS batches_priority ON batches (priority, seq);
CREATE INDEX IF NOT EXISTS batches_sent ON batches (sent_ns);
"""

_CHUNK = 500  # sequence numbers per IN (...) clause, below SQLite's variable limit


def new_epoch() -> str:
    """A fresh spool epoch: 16 random hex digits (64 bits), a valid wire identifier."""
    return secrets.token_hex(8)


class SpoolFullError(RuntimeError):
    """The batch was not accepted: the spool is at its quota with nothing it may drop."""


class SpoolDiskFullError(SpoolFullError):
    """The batch was not accepted: the disk (or file system) holding the spool is full."""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A batch waiting in the spool; ``sends`` counts the broker's acknowledgements of it so far."""

    seq: int
    payload: bytes
    samples: int
    created_ns: int
    sends: int = 0


@dataclass(frozen=True, slots=True)
class EvictedBatch:
    """A batch dropped unsent to make room: ``samples`` values, ``size`` bytes."""

    seq: int
    samples: int
    size: int
    priority: SpoolPriority
    created_ns: int


@dataclass(frozen=True, slots=True)
class SpoolReceipt:
    """What :meth:`BatchSpool.append` did: the new batch's ``seq`` and the batches dropped for it."""

    seq: int
    evicted: tuple[EvictedBatch, ...] = ()


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What an acknowledgement removed: batches and values stored (or duplicates) and refused."""

    stored: int = 0
    stored_samples: int = 0
    refused: int = 0
    refused_samples: int = 0
    refused_seqs: tuple[int, ...] = ()


def _is_disk_full(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()


def _chunks(seqs: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(seqs), _CHUNK):
        yield seqs[start:start + _CHUNK]


class BatchSpool:
    """Batches waiting for the cloud's acknowledgement, at ``path`` (``":memory:"`` for tests).

    ``max_bytes`` is the quota of payload bytes. ``epoch_factory`` makes the epoch of a new spool
    file (default :func:`new_epoch`).
    """

    def __init__(self, path: Path | str, *, max_bytes: int = 512 * 1024 * 1024,
                 epoch_factory: Callable[[], str] = new_epoch) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
        for name, declaration in _ADDED_COLUMNS.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE batches ADD COLUMN {name} {declaration}")
        self._db.executescript(_INDEXES)
        self._db.execute("INSERT OR IGNORE INTO identity (key, value) VALUES ('epoch', ?)", (epoch_factory(),))
        self._epoch = str(self._db.execute("SELECT value FROM identity WHERE key = 'epoch'").fetchone()[0])
        self._lock = threading.Lock()
        self.max_bytes = max_bytes

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @property
    def epoch(self) -> str:
        """The random id made with this spool file; it goes into every batch and the birth message."""
        return self._epoch

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                    self._db.execute("ROLLBACK")
                raise

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def append(self, build: Callable[[int], bytes], created_ns: int, samples: int = 0,
               priority: SpoolPriority = SpoolPriority.ALERT) -> SpoolReceipt:
        """Allocate the next sequence number, store ``build(seq)`` under it, return a receipt.

        ``created_ns`` is when the batch was made (the live-first ordering uses it); ``samples`` how
        many values it carries (for the counters); ``priority`` how it fares at the quota. When the
        batch would pass ``max_bytes``, older batches are dropped to make room, least important
        first and oldest first within a priority, never one more important than the new batch and
        never an ``ALERT`` one; they are listed in the receipt.

        Raises :class:`SpoolFullError` when that cannot make room, :class:`SpoolDiskFullError` when
        the disk is full; in both cases nothing is stored, dropped or consumed.
        """
        try:
            with self._transaction():
                seq = self._meta("next_seq")
                payload = build(seq)
                evicted = self._make_room(len(payload), priority)
                self._db.execute(
                    "INSERT INTO batches (seq, payload, samples, created_ns, priority) VALUES (?, ?, ?, ?, ?)",
                    (seq, payload, samples, created_ns, int(priority)),
                )
                self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'next_seq'")
                self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'bytes'", (len(payload),))
        except sqlite3.Error as exc:
            if _is_disk_full(exc):
                raise SpoolDiskFullError(f"the disk holding the spool is full ({exc})") from exc
            raise
        return SpoolReceipt(seq, evicted)

    def _make_room(self, size: int, priority: SpoolPriority) -> tuple[EvictedBatch, ...]:
        stored = self._meta("bytes")
        excess = stored + size - self.max_bytes
        if excess <= 0:
            return ()
        if size > self.max_bytes:
            raise SpoolFullError(f"a {size} byte batch is larger than the whole spool ({self.max_bytes} bytes)")
        least = max(int(priority), int(SpoolPriority.ROUTINE))
        victims: list[EvictedBatch] = []
        freed = 0
        for kind in sorted((p for p in SpoolPriority if p >= least), reverse=True):  # least important first
            # One priority at a time, in seq order straight from the (priority, seq) index.
            rows = self._db.execute(
                "SELECT seq, samples, length(payload), created_ns FROM batches WHERE priority = ? ORDER BY seq",
                (int(kind),))
            for seq, count, length, created in rows:
                if freed >= excess:
                    break
                victims.append(EvictedBatch(int(seq), int(count), int(length), kind, int(created)))
                freed += int(length)
            rows.close()
            if freed >= excess:
                break
        if freed < excess:
            raise SpoolFullError(
                f"spool holds {stored} bytes; a {size} byte batch would pass {self.max_bytes}, and only "
                f"{freed} bytes are in batches it may drop for it"
            )
        self._delete([victim.seq for victim in victims])
        return tuple(victims)

    def _delete(self, seqs: Sequence[int]) -> None:
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            freed = self._db.execute(
                f"SELECT coalesce(sum(length(payload)), 0) FROM batches WHERE seq IN ({marks})", chunk
            ).fetchone()[0]
            self._db.execute(f"DELETE FROM batches WHERE seq IN ({marks})", chunk)
            self._db.execute("UPDATE meta SET value = value - ? WHERE key = 'bytes'", (int(freed),))

    def due(self, limit: int, *, live_since_ns: int, resend_before_ns: int) -> list[SpooledBatch]:
        """Up to ``limit`` batches to send now, live ones first.

        Due are batches not sent since :meth:`mark_unsent` and those whose last send was
        acknowledged by the broker at or before ``resend_before_ns`` (the cloud's acknowledgement
        is overdue). Batches created at or after ``live_since_ns`` come first, then the backlog;
        oldest first within each.
        """
        if limit <= 0:
            return []
        columns = "seq, payload, samples, created_ns, sends"
        wanted = "(sent_ns IS NULL OR sent_ns <= ?)"
        with self._lock:
            # The live few through the index on created_ns, not a scan of the whole backlog.
            live = self._db.execute(
                f"SELECT {columns} FROM batches INDEXED BY batches_created WHERE created_ns >= ? AND {wanted} "
                "ORDER BY seq LIMIT ?",
                (live_since_ns, resend_before_ns, limit)).fetchall()
            backlog = self._db.execute(
                f"SELECT {columns} FROM batches WHERE created_ns < ? AND {wanted} ORDER BY seq LIMIT ?",
                (live_since_ns, resend_before_ns, limit - len(live))).fetchall() if len(live) < limit else []
        return [SpooledBatch(int(s), bytes(p), int(n), int(c), int(k)) for s, p, n, c, k in (*live, *backlog)]

    def in_flight(self, *, sent_after_ns: int) -> int:
        """Batches sent (broker-acknowledged) after ``sent_after_ns`` and not yet confirmed."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM batches WHERE sent_ns > ?",
                                        (sent_after_ns,)).fetchone()[0])

    def mark_sent(self, seqs: Iterable[int], at_ns: int) -> None:
        """Record that the broker acknowledged ``seqs`` at ``at_ns`` (gone ones are skipped)."""
        ordered = sorted(set(seqs))
        if not ordered:
            return
        with self._transaction():
            for chunk in _chunks(ordered):
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"UPDATE batches SET sent_ns = ?, sends = sends + 1 WHERE seq IN ({marks})",
                                 (at_ns, *chunk))

    def mark_unsent(self) -> int:
        """Make every unconfirmed batch due again (after a reconnect); returns how many were sent."""
        with self._transaction():
            return int(self._db.execute("UPDATE batches SET sent_ns = NULL WHERE sent_ns IS NOT NULL").rowcount)

    def confirm(self, epoch: str, stored: Iterable[int], refused: Iterable[int] = ()) -> Confirmation:
        """Drop the batches the cloud has ``stored`` (or recognised) and ``refused`` for good.

        Only an acknowledgement for this spool's ``epoch`` counts (another epoch's numbers name other
        batches): for any other, nothing happens. Numbers no longer spooled are skipped, so a
        repeated acknowledgement counts nothing twice.
        """
        if epoch != self._epoch:
            return Confirmation()
        refused_set = set(refused)
        stored_set = set(stored) - refused_set
        found: list[tuple[int, int]] = []
        with self._transaction():
            for chunk in _chunks(sorted(stored_set | refused_set)):
                marks = ",".join("?" * len(chunk))
                found.extend((int(s), int(n)) for s, n in self._db.execute(
                    f"SELECT seq, samples FROM batches WHERE seq IN ({marks})", chunk))
            self._delete([seq for seq, _ in found])
        refused_found = [(seq, n) for seq, n in found if seq in refused_set]
        stored_found = [(seq, n) for seq, n in found if seq not in refused_set]
        return Confirmation(len(stored_found), sum(n for _, n in stored_found), len(refused_found),
                            sum(n for _, n in refused_found), tuple(seq for seq, _ in refused_found))

    def pending(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Up to ``limit`` unconfirmed batches, oldest first, as ``(seq, payload)``."""
        with self._lock:
            rows = self._db.execute("SELECT seq, payload FROM batches ORDER BY seq LIMIT ?", (limit,))
            return [(int(seq), bytes(payload)) for seq, payload in rows.fetchall()]

    def oldest_created_ns(self) -> int | None:
        """When the oldest unconfirmed batch was made, or ``None`` when the spool is empty."""
        with self._lock:
            row = self._db.execute("SELECT min(created_ns) FROM batches").fetchone()
        return None if row[0] is None else int(row[0])

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
