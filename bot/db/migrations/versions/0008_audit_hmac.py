"""Audit log: the hashed content is stored, entries carry a version (1 SHA-256, 2 HMAC), anchors.

Existing rows become version 1 with no stored content: they stay verifiable exactly as before.

Revision ID: 0008_audit_hmac
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_audit_hmac"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("content", sa.Text(), nullable=True))
    op.create_table(
        "audit_anchor",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_anchor")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_column("content")
        batch.drop_column("version")
