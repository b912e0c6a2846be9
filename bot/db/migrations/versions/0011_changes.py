"""Changes (deploys, Heroku releases, Kubernetes rollouts), the watch after each, and source cursors.

Revision ID: 0011_changes
Revises: 0010_rollback_check
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_changes"
down_revision = "0010_rollback_check"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("environment", sa.String(40), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("description", sa.String(300), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("watch_status", sa.String(20), nullable=False),
        sa.Column("watch_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watch_state", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_outbox_id", sa.Integer(), nullable=True),
        sa.Column("alert_outbox_id", sa.Integer(), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alert_service", sa.String(100), nullable=True),
        sa.Column("rollback_by", sa.String(100), nullable=True),
        sa.Column("rollback_incident", sa.Integer(), nullable=True),
        sa.Column("auto_rollback_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_cancelled_by", sa.String(100), nullable=True),
        sa.Column("dismissed_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_change_at", "change", ["at"])
    op.create_index("ix_change_service", "change", ["service"])
    op.create_index("ix_change_watch_status", "change", ["watch_status"])
    op.create_table(
        "change_cursor",
        sa.Column("source", sa.String(300), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("change_cursor")
    op.drop_index("ix_change_watch_status", table_name="change")
    op.drop_index("ix_change_service", table_name="change")
    op.drop_index("ix_change_at", table_name="change")
    op.drop_table("change")
