"""A job outlives its data set: deleting an uploaded data set clears the job's reference
to it (the job keeps the data set's version and its config) instead of being refused by
the foreign key or deleting the job's history.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column in place, so the table is copied.
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("dataset_id", existing_type=sa.String(36), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("dataset_id", existing_type=sa.String(36), nullable=False)
