"""experiments table

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("base_model", sa.String(300), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("device", sa.String(16)),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("train_dataset_version", sa.String(64)),
        sa.Column("eval_dataset_version", sa.String(64)),
        sa.Column("train_rows", sa.Integer),
        sa.Column("eval_rows", sa.Integer),
        sa.Column("labels", sa.JSON),
        sa.Column("metrics", sa.JSON),
        sa.Column("results_dir", sa.Text, nullable=False),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_experiments_name", "experiments", ["name"])
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_index("ix_experiments_created_at", "experiments", ["created_at"])
    op.create_index(
        "ix_experiments_train_dataset_version", "experiments", ["train_dataset_version"]
    )


def downgrade() -> None:
    op.drop_table("experiments")
