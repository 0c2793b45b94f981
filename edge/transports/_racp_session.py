"""Fetching a glucose meter's stored records through the Record Access Control Point (0x2A52).

A glucose meter keeps its readings and sends them only when asked: the gateway writes "report
stored records" to the RACP, the meter notifies each matching Glucose Measurement (0x2A18) and then
indicates a Response Code (op code 0x06) that ends the procedure. :class:`StoredRecordCursor`
remembers the highest sequence number received, so each connection asks only for records with a
higher one (``>= last + 1``); the first connection asks for all of them. :class:`RacpFetch` runs one
procedure: the transport feeds it the notifications and indications it receives and it returns a
:class:`RacpFetchOutcome`.

The cursor lives in memory and, when given a path, in a small JSON file (keyed by the meter's
address, so a replaced meter starts from scratch), written atomically by :meth:`StoredRecordCursor.commit`
only once the records are in the gateway's spool: a gateway that dies between fetching records and
spooling them asks for the same records again on its next start, and none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_profiles.errors import DecodeError
from device_profiles.gatt.glucose import decode_glucose_measurement
from device_profiles.gatt.racp import (
    RacpNumberOfRecords,
    RacpOpCode,
    RacpResponseCode,
    abort_operation,
    decode_racp_response,
    report_all_records,
    report_records_from,
)
from device_profiles.profile import normalize_uuid

__all__ = [
    "GLUCOSE_MEASUREMENT_UUID",
    "RACP_UUID",
    "RacpFetch",
    "RacpFetchOutcome",
    "StoredRecordCursor",
    "glucose_sequence_number",
]

log = logging.getLogger(__name__)

RACP_UUID = normalize_uuid("2a52")
GLUCOSE_MEASUREMENT_UUID = normalize_uuid("2a18")

_MAX_SEQUENCE_NUMBER = 0xFFFF
_ABORT_TIMEOUT_S = 5.0


def glucose_sequence_number(payload: bytes) -> int | None:
    """The Sequence Number (uint16) of a Glucose Measurement payload; None if it has none.

    The glucose decoder reads it; a record the decoder rejects for a later field (a bad time,
    a reserved value) still carries its sequence number at bytes 1-2, right after the flags, and
    that is used so one bad record is not fetched again on every connection.
    """
    try:
        return decode_glucose_measurement(payload).sequence_number
    except DecodeError:
        return int.from_bytes(payload[1:3], "little") if len(payload) >= 3 else None


class StoredRecordCursor:
    """The highest glucose record sequence number received from one meter (``last_seen``).

    ``path``: a JSON file to keep it across gateway restarts (None: memory only); ``address``:
    the meter it belongs to, checked on load.
    """

    def __init__(self, address: str, path: Path | None = None) -> None:
        self.address = address
        self.path = path
        self.last_seen: int | None = None
        self._saved: int | None = None
        if path is not None:
            self.last_seen = self._saved = self._load(path)

    def observe(self, sequence_number: int) -> None:
        """Note a received record (sequence number 0..65535)."""
        if self.last_seen is None or sequence_number > self.last_seen:
            self.last_seen = sequence_number

    def next_request(self) -> bytes:
        """The RACP request for the records not received yet (all of them the first time).

        After sequence number 65535 there is no "greater" to ask for, so everything is asked again;
        re-sent records are harmless downstream, where points are keyed by time.
        """
        if self.last_seen is None or self.last_seen >= _MAX_SEQUENCE_NUMBER:
            return report_all_records()
        return report_records_from(self.last_seen + 1)

    @property
    def saved(self) -> int | None:
        """The sequence number last committed (what a restarted gateway starts from)."""
        return self._saved

    @property
    def uncommitted(self) -> bool:
        """Whether records were received that are not committed yet."""
        return self.last_seen != self._saved

    def commit(self, sequence_number: int | None) -> bool:
        """Record that every record up to ``sequence_number`` is in the spool, and write it to ``path``.

        Call it only once they are: a record the cursor passes is never asked for again. A write
        error is logged and returns False (the next commit tries again).
        """
        if sequence_number is None or sequence_number == self._saved:
            return True
        if self.path is None:
            self._saved = sequence_number
            return True
        state = {"address": self.address, "last_sequence_number": sequence_number}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(state) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)  # atomic: a crash leaves the old file or the new one
        except OSError as exc:
            log.warning("cannot save the stored-record cursor to %s: %s", self.path, exc)
            return False
        self._saved = sequence_number
        return True

    def rollback(self) -> None:
        """Forget the records received since the last commit (they did not reach the spool): the
        next request asks for them again."""
        self.last_seen = self._saved

    def _load(self, path: Path) -> int | None:
        try:
            state: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable stored-record cursor %s: %s", path, exc)
            return None
        value = state.get("last_sequence_number") if isinstance(state, dict) else None
        if not isinstance(state, dict) or state.get("address") != self.address:
            log.info("stored-record cursor %s belongs to another meter; fetching all records", path)
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SEQUENCE_NUMBER:
            log.warning("ignoring the stored-record cursor %s: bad last_sequence_number %r", path, value)
            return None
        return value


@dataclass(frozen=True, slots=True)
class RacpFetchOutcome:
    """How one RACP procedure ended.

    ``outcome``: ``success``, ``no_records_found``, another Response Code value's lower-case name
    (e.g. ``op_code_not_supported``), ``timeout`` or ``write_failed``; ``records``: Glucose
    Measurements received meanwhile; ``last_sequence_number``: the cursor afterwards.
    """

    request: bytes
    outcome: str
    records: int
    last_sequence_number: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the meter completed the request (with or without records)."""
        return self.outcome in ("success", "no_records_found")

    def detail(self) -> dict[str, Any]:
        """The event detail reported for this procedure."""
        detail: dict[str, Any] = {"request": self.request.hex(), "outcome": self.outcome, "records": self.records,
                                  "last_sequence_number": self.last_sequence_number}
        if self.error is not None:
            detail["error"] = self.error
        return detail


class RacpFetch:
    """One "report stored records" procedure over a live link.

    ``write(data)`` writes the RACP (with response); ``idle_timeout_s`` is how long to wait without
    any progress (a record or the response) before giving up; each record restarts the wait, so a
    meter sending hundreds of records is not cut off.
    """

    def __init__(self, cursor: StoredRecordCursor, write: Callable[[bytes], Awaitable[None]], *,
                 idle_timeout_s: float) -> None:
        self.cursor = cursor
        self.request = cursor.next_request()
        self.records = 0
        self._write = write
        self._idle_timeout_s = idle_timeout_s
        self._response_code: int | None = None
        self._progress = asyncio.Event()

    def on_record(self, payload: bytes) -> None:
        """A Glucose Measurement notification arrived during the procedure."""
        self.records += 1
        self._progress.set()

    def on_indication(self, payload: bytes) -> None:
        """An RACP indication arrived; a Response Code to "report stored records" ends the procedure."""
        try:
            response = decode_racp_response(payload)
        except DecodeError as exc:
            log.warning("ignoring a malformed RACP indication %s: %s", payload.hex(), exc)
            return
        if isinstance(response, RacpNumberOfRecords) or response.request_op_code != RacpOpCode.REPORT_STORED_RECORDS:
            log.debug("ignoring RACP indication %s: not the answer to our request", payload.hex())
            return
        self._response_code = response.response_code
        self._progress.set()

    async def run(self) -> RacpFetchOutcome:
        """Write the request and wait for the meter's Response Code; never raises but ``CancelledError``."""
        try:
            await self._write(self.request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a GATT error (e.g. procedure already in progress) or a dead link
            return self._outcome("write_failed", f"{type(exc).__name__}: {exc}")
        while self._response_code is None:
            self._progress.clear()
            try:
                async with asyncio.timeout(self._idle_timeout_s):
                    await self._progress.wait()
            except TimeoutError:
                # Tell the meter to stop, in case it is still busy; its answer does not matter.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_ABORT_TIMEOUT_S):
                        await self._write(abort_operation())
                return self._outcome("timeout", f"no RACP progress for {self._idle_timeout_s:g} s")
        try:
            outcome = RacpResponseCode(self._response_code).name.lower()
        except ValueError:
            outcome = f"response_code_{self._response_code:#04x}"
        return self._outcome(outcome, None)

    def _outcome(self, outcome: str, error: str | None) -> RacpFetchOutcome:
        return RacpFetchOutcome(self.request, outcome, self.records, self.cursor.last_seen, error)
