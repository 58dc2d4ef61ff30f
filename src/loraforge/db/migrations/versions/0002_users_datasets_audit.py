"""users, datasets, audit log; experiments get an owner

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("stored_name", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("text_column", sa.String(255), nullable=False),
        sa.Column("label_column", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("label_counts", sa.JSON, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_datasets_owner_id", "datasets", ["owner_id"])
    op.create_index("ix_datasets_version", "datasets", ["version"])
    op.create_index("ix_datasets_created_at", "datasets", ["created_at"])
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer),
        sa.Column("username", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("client", sa.String(64)),
        sa.Column("detail", sa.JSON),
    )
    for column in ("at", "user_id", "username", "action"):
        op.create_index(f"ix_audit_logs_{column}", "audit_logs", [column])
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column(
                "owner_id", sa.Integer, sa.ForeignKey("users.id", name="fk_experiments_owner")
            )
        )
        batch.create_index("ix_experiments_owner_id", ["owner_id"])


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_index("ix_experiments_owner_id")
        batch.drop_constraint("fk_experiments_owner", type_="foreignkey")
        batch.drop_column("owner_id")
    op.drop_table("audit_logs")
    op.drop_table("datasets")
    op.drop_table("users")
