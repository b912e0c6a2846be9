"""A running step holds a lease its process renews; an expired lease means the process died.

Revision ID: 0007_step_lease
Revises: 0004_incidents
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_step_lease"
down_revision = "0004_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs started before this revision have no lease: the sweep judges them by their start time.
    op.add_column("incident_step", sa.Column("lease_owner", sa.String(100), nullable=True))
    op.add_column("incident_step", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_incident_step_status_lease", "incident_step", ["status", "lease_until"])


def downgrade() -> None:
    op.drop_index("ix_incident_step_status_lease", "incident_step")
    with op.batch_alter_table("incident_step") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
