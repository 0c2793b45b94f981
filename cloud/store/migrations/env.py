"""Alembic environment: runs migrations on the connection or URL the store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from cloud.store import _registry_models  # noqa: F401  (its tables join the metadata)
from cloud.store._enrolment_models import EnrolmentCodeRecord  # noqa: F401 (its table)
from cloud.store._health_models import DeviceHealth, GatewayHealth  # noqa: F401 (their tables)
from cloud.store._hl7_models import Hl7OutboxRecord  # noqa: F401 (its table)
from cloud.store._models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
