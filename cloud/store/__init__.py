"""The relational store (SQLAlchemy 2, Alembic migrations): alerts, dead letters, the ingest log."""

from cloud.store._models import AlertRecord, Base, DeadLetter, IngestedBatch
from cloud.store._store import AlertQuery, Store, open_store

__all__ = ["AlertQuery", "AlertRecord", "Base", "DeadLetter", "IngestedBatch", "Store", "open_store"]
