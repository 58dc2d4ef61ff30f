"""One experiment id per job: two jobs submitted within the same second once got the same
id, and so one results folder and one MLflow run.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text("SELECT experiment_id FROM jobs GROUP BY experiment_id HAVING COUNT(*) > 1")
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            "jobs share experiment ids (" + ", ".join(shared) + "); give all but one of each "
            "a new experiment_id (or delete them) before upgrading"
        )
    op.drop_index("ix_jobs_experiment_id", table_name="jobs")
    op.create_index("ix_jobs_experiment_id", "jobs", ["experiment_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_jobs_experiment_id", table_name="jobs")
    op.create_index("ix_jobs_experiment_id", "jobs", ["experiment_id"])
