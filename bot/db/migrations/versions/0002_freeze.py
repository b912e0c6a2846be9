"""Freeze windows, recorded deploys, break-glass exemptions, announcement claims.

Revision ID: 0002_freeze
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_freeze"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "freeze_window",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(100), nullable=True),
        sa.Column("recurring_key", sa.String(200), nullable=True, unique=True),
        sa.Column("next_event_at", sa.DateTime(timezone=True), nullable=True, index=True),
    )
    op.create_index("ix_freeze_window_env_span", "freeze_window", ["environment", "ends_at", "starts_at"])
    op.create_table(
        "freeze_deploy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("url", sa.String(1000), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exemption_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_freeze_deploy_env_service", "freeze_deploy", ["environment", "service", "id"])
    op.create_table(
        "freeze_exemption",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("window_id", sa.Integer(), nullable=False, index=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "freeze_announcement",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("freeze_announcement")
    op.drop_table("freeze_exemption")
    op.drop_index("ix_freeze_deploy_env_service", "freeze_deploy")
    op.drop_table("freeze_deploy")
    op.drop_index("ix_freeze_window_env_span", "freeze_window")
    op.drop_table("freeze_window")
