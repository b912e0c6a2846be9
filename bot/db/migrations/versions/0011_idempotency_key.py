"""Idempotency keys of API requests that create something (POST /api/v1/freezes): a retried request
gets what the first one created instead of creating it twice.

Revision ID: 0011_idempotency_key
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_idempotency_key"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("scope", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_key")
