"""Gateway and device health, read from the gateways' status and events topics.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_health",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_time", sa.Float(), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("epoch", sa.String(64), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=True),
        sa.Column("oldest_unsent_s", sa.Float(), nullable=True),
        sa.Column("dropped_values", sa.Integer(), nullable=False),
        sa.Column("drop_events", sa.Integer(), nullable=False),
    )
    op.create_index("ix_gateway_health_last_seen", "gateway_health", ["last_seen"])
    op.create_table(
        "device_health",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("patient", sa.String(64), nullable=True),
        sa.Column("last_reading", sa.DateTime(timezone=True), nullable=True),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.Column("link", sa.String(16), nullable=False),
        sa.Column("link_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_reason", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_device_health_patient", "device_health", ["patient"])


def downgrade() -> None:
    op.drop_index("ix_device_health_patient", "device_health")
    op.drop_table("device_health")
    op.drop_index("ix_gateway_health_last_seen", "gateway_health")
    op.drop_table("gateway_health")
