"""Model registry, second slice: what a version's card and search need.

``task``: what the model does, in a few words ("sentiment", "topic"), searchable;
``intended_use`` / ``limitations``: the card's owner-editable prose; ``embedding`` (of the
card's text) and ``data_embedding`` (centroid of its training texts and label names),
computed once at registration for recommendation; ``mlflow_version``: the MLflow
registered-model version that mirrors this row (``registry sync`` repairs it).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("task", sa.String(64)))
        batch.add_column(sa.Column("intended_use", sa.Text))
        batch.add_column(sa.Column("limitations", sa.Text))
        batch.add_column(sa.Column("embedding", sa.JSON))
        batch.add_column(sa.Column("data_embedding", sa.JSON))
        batch.add_column(sa.Column("mlflow_version", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        for column in (
            "mlflow_version",
            "data_embedding",
            "embedding",
            "limitations",
            "intended_use",
            "task",
        ):
            batch.drop_column(column)
