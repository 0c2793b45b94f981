"""Errors by kind: transient ones hold the micro-batch and retry; permanent ones refuse one message."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from cloud.timeseries import InfluxUnavailable

__all__ = ["StoreRefused", "TransientError", "classify_store_error"]


class TransientError(RuntimeError):
    """The time-series store or the database is away or busy: acknowledge nothing, retry later.

    ``store`` names which: ``"influxdb"`` or ``"database"``.
    """

    def __init__(self, message: str, store: str) -> None:
        super().__init__(message)
        self.store = store


class StoreRefused(RuntimeError):
    """The database refused what a micro-batch would write (a value it cannot hold): split to find it."""


def classify_store_error(exc: BaseException) -> BaseException:
    """Map a database error to :class:`TransientError` or :class:`StoreRefused` (others pass through)."""
    if isinstance(exc, sa_exc.DataError):
        return StoreRefused(f"the database refused a value: {_first_line(exc)}")
    if isinstance(exc, sa_exc.SQLAlchemyError):
        # Locks, failovers, lost connections, a full pool, and integrity races between workers all
        # come right by themselves; retrying is safe because nothing was committed.
        return TransientError(f"database unavailable: {_first_line(exc)}", "database")
    if isinstance(exc, InfluxUnavailable):
        return TransientError(str(exc), "influxdb")
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
