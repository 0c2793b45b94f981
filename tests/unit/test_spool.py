"""BatchSpool on a temp SQLite file: durability across reopen, sequence numbers, limits, accounting."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.priority import SpoolPriority
from edge.spool import BatchSpool, Confirmation, EvictedBatch, SpoolDiskFullError, SpooledBatch, SpoolFullError


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "spool.db"  # the parent folder does not exist yet


@pytest.fixture
def spool(path: Path) -> Iterator[BatchSpool]:
    opened = BatchSpool(path)
    try:
        yield opened
    finally:
        opened.close()


def test_append_allocates_sequence_numbers_and_keeps_order(spool: BatchSpool) -> None:
    seqs = [spool.append(lambda seq: b"batch-%d" % seq, created_ns=100 + i, samples=i).seq for i in range(3)]
    assert seqs == [0, 1, 2]
    assert spool.pending() == [(0, b"batch-0"), (1, b"batch-1"), (2, b"batch-2")]
    assert spool.pending(limit=2) == [(0, b"batch-0"), (1, b"batch-1")]
    assert len(spool) == 3
    assert spool.next_seq == 3


def test_confirm_drops_the_batches_the_cloud_names_and_counts_them_once(spool: BatchSpool) -> None:
    spool.append(lambda seq: b"a", 1, samples=5)
    spool.append(lambda seq: b"bb", 2, samples=7)
    spool.append(lambda seq: b"ccc", 3, samples=11)
    assert spool.confirm(spool.epoch, [0]) == Confirmation(stored=1, stored_samples=5)
    assert spool.pending() == [(1, b"bb"), (2, b"ccc")]
    assert spool.confirm(spool.epoch, [0, 99]) == Confirmation()  # already gone, never there
    assert spool.confirm(spool.epoch, [1], refused=[2]) == Confirmation(1, 7, 1, 11, (2,))
    assert spool.pending() == [] and len(spool) == 0 and spool.stored_bytes == 0


def test_an_acknowledgement_for_another_epoch_drops_nothing(spool: BatchSpool) -> None:
    spool.append(lambda seq: b"a", 1, samples=5)
    assert spool.confirm("0123456789abcdef", [0]) == Confirmation()
    assert spool.confirm("", [0]) == Confirmation()
    assert len(spool) == 1


def test_batches_survive_reopening_the_same_file(path: Path) -> None:
    first = BatchSpool(path)
    first.append(lambda seq: b"one", 1, samples=1)
    first.append(lambda seq: b"two", 2, samples=2)
    first.confirm(first.epoch, [0])
    first.close()
    second = BatchSpool(path)
    try:
        assert second.pending() == [(1, b"two")]
        assert second.stored_bytes == 3
        assert second.confirm(second.epoch, [1]).stored_samples == 2
    finally:
        second.close()


def test_sequence_numbers_keep_growing_across_restarts_even_when_empty(path: Path) -> None:
    seen: list[int] = []
    for _ in range(3):
        spool = BatchSpool(path)
        seq = spool.append(lambda s: b"x", 1).seq
        seen.append(seq)
        spool.confirm(spool.epoch, [seq])  # confirmed: the spool is empty again when it closes
        spool.close()
    assert seen == [0, 1, 2]


def test_build_receives_the_sequence_number_it_is_stored_under(spool: BatchSpool) -> None:
    spool.append(lambda seq: b"x", 1)
    stored = spool.append(lambda seq: f"seq={seq}".encode(), 2).seq
    assert spool.pending()[-1] == (stored, f"seq={stored}".encode())


def test_full_spool_of_alert_readings_refuses_and_leaves_nothing_behind(path: Path) -> None:
    spool = BatchSpool(path, max_bytes=100)
    try:
        spool.append(lambda seq: _payload(60), 1)
        with pytest.raises(SpoolFullError, match="spool holds 60 bytes; a 41 byte batch would pass 100"):
            spool.append(lambda seq: _payload(41), 2)
        assert (len(spool), spool.stored_bytes, spool.next_seq) == (1, 60, 1)
        assert spool.append(lambda seq: _payload(40), 3).seq == 1  # exactly full is fine, seq not consumed
        assert spool.stored_bytes == 100
    finally:
        spool.close()
    reopened = BatchSpool(path, max_bytes=100)
    try:
        assert [seq for seq, _ in reopened.pending()] == [0, 1]
        assert reopened.stored_bytes == 100
    finally:
        reopened.close()


def test_failing_build_leaves_nothing_behind(spool: BatchSpool) -> None:
    def explode(seq: int) -> bytes:
        raise ValueError("encoder refused")

    with pytest.raises(ValueError, match="encoder refused"):
        spool.append(explode, 1)
    assert (len(spool), spool.stored_bytes, spool.next_seq) == (0, 0, 0)
    assert spool.append(lambda seq: b"ok", 2).seq == 0


def test_stored_bytes_accounting(spool: BatchSpool) -> None:
    sizes = [1, 255, 256, 1000, 4096]
    for size in sizes:
        spool.append(lambda seq, n=size: _payload(n), 1)
    assert spool.stored_bytes == sum(sizes)
    spool.confirm(spool.epoch, [2])
    spool.confirm(spool.epoch, [2])
    assert spool.stored_bytes == sum(sizes) - 256
    assert [len(p) for _, p in spool.pending()] == [1, 255, 1000, 4096]
    assert [p for _, p in spool.pending()][3] == _payload(4096)


def test_concurrent_appends_get_distinct_sequence_numbers(spool: BatchSpool) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            seq = spool.append(lambda s: b"x", 1).seq
            with lock:
                results.append(seq)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(80))
    assert len(spool) == 80 and spool.stored_bytes == 80


def test_in_memory_spool() -> None:
    spool = BatchSpool(":memory:")
    try:
        assert spool.append(lambda seq: b"m", 1).seq == 0
        assert spool.pending() == [(0, b"m")]
    finally:
        spool.close()


# ---------------------------------------------------------------------------------------------------
# Epoch
# ---------------------------------------------------------------------------------------------------


def test_the_epoch_is_made_with_the_file_and_kept_across_restarts(path: Path, tmp_path: Path) -> None:
    first = BatchSpool(path)
    epoch = first.epoch
    first.close()
    again = BatchSpool(path)
    other = BatchSpool(tmp_path / "other.db")
    try:
        assert again.epoch == epoch
        assert other.epoch != epoch
        assert re.fullmatch(r"[0-9a-f]{16}", epoch)
    finally:
        again.close()
        other.close()


def test_an_all_digit_epoch_keeps_its_leading_zeros(path: Path) -> None:
    BatchSpool(path, epoch_factory=lambda: "0012345678901234").close()
    reopened = BatchSpool(path, epoch_factory=lambda: "ffffffffffffffff")
    try:
        assert reopened.epoch == "0012345678901234"
    finally:
        reopened.close()


def test_a_spool_file_from_before_epochs_gets_one_and_keeps_its_batches(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
            "CREATE TABLE batches (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, samples INTEGER NOT NULL,"
            " created_ns INTEGER NOT NULL);"
            "INSERT INTO meta VALUES ('next_seq', 8), ('bytes', 3);"
            "INSERT INTO batches VALUES (7, x'010203', 4, 5);"
        )
    old.close()
    spool = BatchSpool(path, max_bytes=3)
    try:
        assert spool.epoch and spool.pending() == [(7, b"\x01\x02\x03")]
        with pytest.raises(SpoolFullError):  # an old row is kept like an alert reading
            spool.append(lambda seq: b"x", 6, priority=SpoolPriority.WAVEFORM)
        assert spool.append(lambda seq: b"", 6).seq == 8
    finally:
        spool.close()


# ---------------------------------------------------------------------------------------------------
# Sent, due, confirmed
# ---------------------------------------------------------------------------------------------------


def _fill(spool: BatchSpool, created: list[int]) -> None:
    for index, created_ns in enumerate(created):
        spool.append(lambda seq: b"b%d" % seq, created_ns, samples=index + 1)


def test_due_sends_live_batches_first_then_the_backlog_oldest_first(spool: BatchSpool) -> None:
    _fill(spool, [10, 11, 12, 13, 100, 101])  # a backlog of four, then two live batches
    due = spool.due(4, live_since_ns=100, resend_before_ns=0)
    assert [b.seq for b in due] == [4, 5, 0, 1]
    assert [b.created_ns for b in due] == [100, 101, 10, 11]
    assert due[0] == SpooledBatch(4, b"b4", 5, 100, 0)
    assert [b.seq for b in spool.due(1, live_since_ns=100, resend_before_ns=0)] == [4]
    assert spool.due(0, live_since_ns=100, resend_before_ns=0) == []


def test_a_sent_batch_waits_for_the_cloud_and_is_due_again_once_overdue(spool: BatchSpool) -> None:
    _fill(spool, [1, 2, 3])
    spool.mark_sent([0, 1], at_ns=1_000)
    assert spool.in_flight(sent_after_ns=0) == 2
    assert [b.seq for b in spool.due(10, live_since_ns=0, resend_before_ns=999)] == [2]
    overdue = spool.due(10, live_since_ns=0, resend_before_ns=1_000)
    assert [(b.seq, b.sends) for b in overdue] == [(0, 1), (1, 1), (2, 0)]
    assert spool.in_flight(sent_after_ns=1_000) == 0
    assert len(spool) == 3  # the broker having a batch is not enough


def test_after_a_reconnect_every_unconfirmed_batch_is_due_again(spool: BatchSpool) -> None:
    _fill(spool, [1, 2, 3])
    spool.mark_sent([0, 2, 77], at_ns=50)  # 77 is gone already: skipped
    assert spool.mark_unsent() == 2
    due = spool.due(10, live_since_ns=0, resend_before_ns=0)
    assert [(b.seq, b.sends) for b in due] == [(0, 1), (1, 0), (2, 1)]
    assert spool.in_flight(sent_after_ns=0) == 0


def test_sent_marks_survive_a_restart_until_the_next_connect(path: Path) -> None:
    spool = BatchSpool(path)
    _fill(spool, [1])
    spool.mark_sent([0], at_ns=5)
    spool.close()
    reopened = BatchSpool(path)
    try:
        assert reopened.in_flight(sent_after_ns=0) == 1
        assert reopened.mark_unsent() == 1
    finally:
        reopened.close()


def test_oldest_created(spool: BatchSpool) -> None:
    assert spool.oldest_created_ns() is None
    _fill(spool, [40, 30])
    assert spool.oldest_created_ns() == 30


# ---------------------------------------------------------------------------------------------------
# Quota by priority, full disk
# ---------------------------------------------------------------------------------------------------


def _add(spool: BatchSpool, size: int, priority: SpoolPriority, created_ns: int = 0, samples: int = 1) -> int:
    return spool.append(lambda seq: _payload(size), created_ns, samples=samples, priority=priority).seq


def test_at_the_quota_waveforms_go_first_then_routine_numerics_never_alerts(path: Path) -> None:
    spool = BatchSpool(path, max_bytes=100)
    try:
        alert = _add(spool, 20, SpoolPriority.ALERT)
        routine_old = _add(spool, 20, SpoolPriority.ROUTINE, samples=3)
        wave_old = _add(spool, 20, SpoolPriority.WAVEFORM, created_ns=7, samples=500)
        routine_new = _add(spool, 20, SpoolPriority.ROUTINE)
        wave_new = _add(spool, 20, SpoolPriority.WAVEFORM)
        receipt = spool.append(lambda seq: _payload(30), 9, priority=SpoolPriority.ROUTINE)
        assert receipt.evicted == (EvictedBatch(wave_old, 500, 20, SpoolPriority.WAVEFORM, 7),
                                   EvictedBatch(wave_new, 1, 20, SpoolPriority.WAVEFORM, 0))
        receipt = spool.append(lambda seq: _payload(40), 9, priority=SpoolPriority.ALERT)
        assert [e.seq for e in receipt.evicted] == [routine_old, routine_new]
        assert {seq for seq, _ in spool.pending()} == {alert, receipt.seq - 1, receipt.seq}
        assert spool.stored_bytes == 90
    finally:
        spool.close()


def test_a_waveform_makes_room_only_among_older_waveforms(path: Path) -> None:
    spool = BatchSpool(path, max_bytes=50)
    try:
        _add(spool, 20, SpoolPriority.ROUTINE)
        wave = _add(spool, 20, SpoolPriority.WAVEFORM)
        assert [e.seq for e in spool.append(lambda s: _payload(25), 1, priority=SpoolPriority.WAVEFORM).evicted] \
            == [wave]
        with pytest.raises(SpoolFullError, match="only 25 bytes are in batches it may drop"):
            spool.append(lambda s: _payload(31), 1, priority=SpoolPriority.WAVEFORM)
        assert (len(spool), spool.stored_bytes, spool.next_seq) == (2, 45, 3)  # nothing dropped for a refusal
    finally:
        spool.close()


def test_a_batch_larger_than_the_whole_spool_drops_nothing(path: Path) -> None:
    spool = BatchSpool(path, max_bytes=50)
    try:
        _add(spool, 20, SpoolPriority.WAVEFORM)
        with pytest.raises(SpoolFullError, match="larger than the whole spool"):
            spool.append(lambda s: _payload(51), 1, priority=SpoolPriority.ALERT)
        assert len(spool) == 1
    finally:
        spool.close()


def _disk_full_after(spool: BatchSpool, pages: int) -> None:
    # SQLite's own "database or disk is full" (SQLITE_FULL) without filling a disk: cap the file size.
    spool._db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_refuses_the_batch_with_a_clear_error_and_keeps_the_spool_usable(path: Path) -> None:
    spool = BatchSpool(path)
    try:
        _fill(spool, [1, 2])
        pages = int(spool._db.execute("PRAGMA page_count").fetchone()[0])
        _disk_full_after(spool, pages)
        with pytest.raises(SpoolDiskFullError, match=r"disk holding the spool is full .*database or disk is full"):
            spool.append(lambda seq: _payload(64 * 1024), 3)
        assert (len(spool), spool.next_seq) == (2, 2)
        spool.mark_sent([0], at_ns=9)
        assert spool.confirm(spool.epoch, [0, 1]).stored == 2  # draining still works
        assert spool.stored_bytes == 0
    finally:
        spool.close()
