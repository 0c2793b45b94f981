"""The HL7 v2 outbox: messages to an EHR's MLLP endpoint, sent in order and marked after the ACK.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hl7_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("control_id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_hl7_outbox_patient", "hl7_outbox", ["patient"])
    op.create_index("ix_hl7_outbox_status", "hl7_outbox", ["status"])


def downgrade() -> None:
    op.drop_index("ix_hl7_outbox_status", "hl7_outbox")
    op.drop_index("ix_hl7_outbox_patient", "hl7_outbox")
    op.drop_table("hl7_outbox")
