"""The audit hash chain (pure): each row's hash covers the previous row's hash and the row's own content,
so editing a row breaks its own hash and deleting one breaks the link of the next."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CHAINED_FIELDS", "GENESIS", "ChainVerdict", "row_hash", "verify_chain"]

GENESIS = "0" * 64
CHAINED_FIELDS = ("id", "at_us", "actor", "role", "patient", "action", "target", "client", "status", "outcome")


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``prev_hash`` and the row's :data:`CHAINED_FIELDS` as canonical JSON."""
    content = json.dumps([row[name] for name in CHAINED_FIELDS], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """``ok``, or the first row found wrong (``first_bad_id``) and why."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify_chain(rows: Iterable[Mapping[str, Any]], *, anchor_id: int, anchor_hash: str, last_id: int,
                 last_hash: str) -> ChainVerdict:
    """Check ``rows`` (in id order, every field plus ``prev_hash`` and ``hash``) from the anchor left by pruning
    up to the head. Finds an edited row (its hash), a deleted row (a gap in ids or a broken link) and a
    deleted tail (the head names a row that is gone)."""
    expected_id, expected_prev, checked = anchor_id + 1, anchor_hash, 0
    for row in rows:
        row_id = int(row["id"])
        if row_id != expected_id:
            return ChainVerdict(False, checked, expected_id, f"row {expected_id} is missing")
        if row["prev_hash"] != expected_prev:
            return ChainVerdict(False, checked, row_id, "its link to the previous row is broken")
        if row_hash(expected_prev, row) != row["hash"]:
            return ChainVerdict(False, checked, row_id, "its content does not match its hash")
        expected_id, expected_prev, checked = row_id + 1, str(row["hash"]), checked + 1
    if expected_id - 1 != last_id or expected_prev != last_hash:
        return ChainVerdict(False, checked, expected_id, f"rows {expected_id}..{last_id} are missing")
    return ChainVerdict(True, checked)
