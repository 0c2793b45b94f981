"""Alert lifecycle: lifecycle columns on alerts, transitions, the notification outbox, deliveries, silences.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("kind", sa.String(32), nullable=False, server_default="value"))
        batch.add_column(sa.Column("episode_ns", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("episodes", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("changed_at", _TZ, nullable=True))
        batch.add_column(sa.Column("firing_since", _TZ, nullable=True))
        batch.add_column(sa.Column("escalation_step", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_notified_at", _TZ, nullable=True))
        batch.add_column(sa.Column("resolved_at", _TZ, nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("resolution", sa.String(32), nullable=True))
        batch.add_column(sa.Column("manual_episode_ns", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    # Alerts from before the lifecycle: open ones fire (or stay acknowledged), resolved ones stay resolved.
    # Their escalation is taken as done (nothing was ever sent for them; they are not sent now).
    op.execute("UPDATE alerts SET episode_ns = episode_start_ns, escalation_step = 1000000")
    op.execute("UPDATE alerts SET state = 'acknowledged' WHERE state = 'open' AND acknowledged_at IS NOT NULL")
    op.execute("UPDATE alerts SET state = 'firing' WHERE state = 'open'")
    op.create_table(
        "alert_transitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", _TZ, nullable=False),
    )
    op.create_index("ix_alert_transitions_alert_id", "alert_transitions", ["alert_id"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("next_attempt_at", _TZ, nullable=False),
        sa.Column("lease_until", _TZ, nullable=True),
        sa.Column("sent_at", _TZ, nullable=True),
    )
    op.create_index("ix_notification_deliveries_patient", "notification_deliveries", ["patient"])
    op.create_index("ix_notification_deliveries_status", "notification_deliveries", ["status"])
    op.create_table(
        "notification_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("delivery_id", sa.Integer(), sa.ForeignKey("notification_deliveries.id"), nullable=True),
    )
    op.create_index("ix_notification_items_alert_id", "notification_items", ["alert_id"])
    op.create_index("ix_notification_items_patient", "notification_items", ["patient"])
    op.create_index("ix_notification_items_created_at", "notification_items", ["created_at"])
    op.create_index("ix_notification_items_status", "notification_items", ["status"])
    op.create_index("ix_notification_items_delivery_id", "notification_items", ["delivery_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("metric", sa.String(64), nullable=True),
        sa.Column("starts_at", _TZ, nullable=False),
        sa.Column("ends_at", _TZ, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("deleted_at", _TZ, nullable=True),
        sa.Column("deleted_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_silences_patient", "silences", ["patient"])
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])


def downgrade() -> None:
    op.drop_table("silences")
    op.drop_table("notification_items")
    op.drop_table("notification_deliveries")
    op.drop_table("alert_transitions")
    op.execute("UPDATE alerts SET state = 'open' WHERE state IN ('pending', 'firing', 'acknowledged')")
    op.execute("UPDATE alerts SET state = 'resolved' WHERE state = 'closed'")
    with op.batch_alter_table("alerts") as batch:
        for column in ("version", "manual_episode_ns", "resolution", "resolved_by", "resolved_at", "last_notified_at",
                       "escalation_step", "firing_since", "changed_at", "episodes", "episode_ns", "kind"):
            batch.drop_column(column)
