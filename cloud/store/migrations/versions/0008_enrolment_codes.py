"""Gateway enrolment codes: single use, expiring, stored only as a hash.

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("gateway_id", sa.String(64), sa.ForeignKey("gateways.id", ondelete="CASCADE"), nullable=False),
        sa.Column("patients", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_from", sa.String(64), nullable=True),
    )
    op.create_index("ix_enrolment_codes_gateway_id", "enrolment_codes", ["gateway_id"])


def downgrade() -> None:
    op.drop_index("ix_enrolment_codes_gateway_id", "enrolment_codes")
    op.drop_table("enrolment_codes")
