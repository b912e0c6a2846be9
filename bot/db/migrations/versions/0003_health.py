"""Health watching: the announced state of each watched service, claimed across replicas.

Revision ID: 0003_health
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_health"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_watch",
        sa.Column("service", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health_watch")
