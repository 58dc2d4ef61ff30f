"""Model registry: registered models, their versions and the history of their stages.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), sa.ForeignKey("registered_models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("experiment_id", sa.String(100), sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("description", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    for column in ("name", "experiment_id", "owner_id"):
        op.create_index(f"ix_model_versions_{column}", "model_versions", [column])
    # A partial unique index: at most one row per model may be in Production. Both SQLite
    # and PostgreSQL support it, so the rule holds whichever process writes.
    op.create_index(
        "ux_model_versions_one_production",
        "model_versions",
        ["name"],
        unique=True,
        sqlite_where=sa.text("stage = 'Production'"),
        postgresql_where=sa.text("stage = 'Production'"),
    )
    op.create_table(
        "model_transitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("from_stage", sa.String(16)),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer),
        sa.Column("actor_username", sa.String(64)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("metrics", sa.JSON),
        sa.Column("previous_production_metrics", sa.JSON),
        sa.Column("forced", sa.Boolean, nullable=False),
    )
    op.create_index("ix_model_transitions_name", "model_transitions", ["name"])
    op.create_index("ix_model_transitions_at", "model_transitions", ["at"])


def downgrade() -> None:
    op.drop_table("model_transitions")
    op.drop_table("model_versions")
    op.drop_table("registered_models")
