"""Per-patient settings with their history, each gateway's threshold message, and the versions on alerts.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patient_settings",
        sa.Column("patient", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_table(
        "patient_settings_current",
        sa.Column("patient", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
    )
    op.create_table(
        "gateway_configs",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.Column("published_revision", sa.BigInteger(), nullable=True),
        sa.Column("published_at", _TZ, nullable=True),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("rule_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("settings_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("settings_version")
        batch.drop_column("rule_version")
    op.drop_table("gateway_configs")
    op.drop_table("patient_settings_current")
    op.drop_table("patient_settings")
