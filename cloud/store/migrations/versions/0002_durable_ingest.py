"""Durable ingest: the ingest log keyed by spool epoch, gateway epochs, rule states, late alerts.

Revision ID: 0002
Revises: 0001
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_log",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("received_ns", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_ingest_log_received_ns", "ingest_log", ["received_ns"])
    # Batches logged before epochs existed came from gateways that send no epoch: epoch ''. Their
    # receipt time restarts the dedup horizon now (the old column's text format varies by database).
    op.execute(
        "INSERT INTO ingest_log (gateway, epoch, seq, patient, samples, received_ns) "
        f"SELECT gateway, '', seq, patient, samples, {time.time_ns()} FROM ingested_batches"
    )
    op.drop_table("ingested_batches")
    op.create_table(
        "gateway_epochs",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.String(64), primary_key=True),
        sa.Column("high_seq", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("backwards", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "rule_states",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("patient", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("late")
    op.drop_table("rule_states")
    op.drop_table("gateway_epochs")
    op.create_table(
        "ingested_batches",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.drop_index("ix_ingest_log_received_ns", "ingest_log")
    op.drop_table("ingest_log")
