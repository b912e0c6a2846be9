"""Incidents and the state of each playbook step run in them.

Revision ID: 0004_incidents
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_incidents"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("commander", sa.String(100), nullable=False),
        sa.Column("playbook", sa.String(100), nullable=True),
        sa.Column("declared_in", sa.String(40), nullable=True),
        sa.Column("channel_id", sa.String(40), nullable=True, index=True),
        sa.Column("channel_name", sa.String(80), nullable=True),
        sa.Column("header_ts", sa.String(40), nullable=True),
        sa.Column("freeze_id", sa.Integer(), nullable=True),
        sa.Column("playbook_ts", sa.String(40), nullable=True),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
    )
    op.create_table(
        "incident_step",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=False, index=True),
        sa.Column("step_key", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("remembered", sa.Text(), nullable=True),
        sa.UniqueConstraint("incident_id", "step_key", name="uq_incident_step"),
    )


def downgrade() -> None:
    op.drop_table("incident_step")
    op.drop_table("incident")
