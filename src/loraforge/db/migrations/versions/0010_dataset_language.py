"""Data sets record their language: the dominant one and each one's share, as detected
when the file was uploaded (data/language.py), beside the version they describe.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("language", sa.String(16)))
        batch.add_column(sa.Column("languages", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("languages")
        batch.drop_column("language")
