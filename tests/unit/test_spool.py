"""BatchSpool on a temp SQLite file: durability across reopen, sequence numbers, limits, accounting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.spool import BatchSpool, SpoolFullError


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
    seqs = [spool.append(lambda seq: b"batch-%d" % seq, created_ns=100 + i, samples=i) for i in range(3)]
    assert seqs == [0, 1, 2]
    assert spool.pending() == [(0, b"batch-0"), (1, b"batch-1"), (2, b"batch-2")]
    assert spool.pending(limit=2) == [(0, b"batch-0"), (1, b"batch-1")]
    assert len(spool) == 3
    assert spool.next_seq == 3


def test_acknowledge_drops_a_batch_and_returns_its_samples(spool: BatchSpool) -> None:
    spool.append(lambda seq: b"a", 1, samples=5)
    spool.append(lambda seq: b"bb", 2, samples=7)
    assert spool.acknowledge(0) == 5
    assert spool.pending() == [(1, b"bb")]
    assert spool.acknowledge(0) == 0  # already gone
    assert spool.acknowledge(99) == 0
    assert spool.acknowledge(1) == 7
    assert spool.pending() == [] and len(spool) == 0 and spool.stored_bytes == 0


def test_batches_survive_reopening_the_same_file(path: Path) -> None:
    first = BatchSpool(path)
    first.append(lambda seq: b"one", 1, samples=1)
    first.append(lambda seq: b"two", 2, samples=2)
    first.acknowledge(0)
    first.close()
    second = BatchSpool(path)
    try:
        assert second.pending() == [(1, b"two")]
        assert second.stored_bytes == 3
        assert second.acknowledge(1) == 2
    finally:
        second.close()


def test_sequence_numbers_keep_growing_across_restarts_even_when_empty(path: Path) -> None:
    seen: list[int] = []
    for _ in range(3):
        spool = BatchSpool(path)
        seq = spool.append(lambda s: b"x", 1)
        seen.append(seq)
        spool.acknowledge(seq)  # acknowledged: the spool is empty again when it closes
        spool.close()
    assert seen == [0, 1, 2]


def test_build_receives_the_sequence_number_it_is_stored_under(spool: BatchSpool) -> None:
    spool.append(lambda seq: b"x", 1)
    stored = spool.append(lambda seq: f"seq={seq}".encode(), 2)
    assert spool.pending()[-1] == (stored, f"seq={stored}".encode())


def test_full_spool_refuses_and_leaves_nothing_behind(path: Path) -> None:
    spool = BatchSpool(path, max_bytes=100)
    try:
        spool.append(lambda seq: _payload(60), 1)
        with pytest.raises(SpoolFullError, match="spool holds 60 bytes; a 41 byte batch would pass 100"):
            spool.append(lambda seq: _payload(41), 2)
        assert (len(spool), spool.stored_bytes, spool.next_seq) == (1, 60, 1)
        assert spool.append(lambda seq: _payload(40), 3) == 1  # exactly full is fine, seq not consumed
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
    assert spool.append(lambda seq: b"ok", 2) == 0


def test_stored_bytes_accounting(spool: BatchSpool) -> None:
    sizes = [1, 255, 256, 1000, 4096]
    for size in sizes:
        spool.append(lambda seq, n=size: _payload(n), 1)
    assert spool.stored_bytes == sum(sizes)
    spool.acknowledge(2)
    spool.acknowledge(2)
    assert spool.stored_bytes == sum(sizes) - 256
    assert [len(p) for _, p in spool.pending()] == [1, 255, 1000, 4096]
    assert [p for _, p in spool.pending()][3] == _payload(4096)


def test_concurrent_appends_get_distinct_sequence_numbers(spool: BatchSpool) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            seq = spool.append(lambda s: b"x", 1)
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
        assert spool.append(lambda seq: b"m", 1) == 0
        assert spool.pending() == [(0, b"m")]
    finally:
        spool.close()
