"""Per-call failovers: each stage that switched provider mid-call, as a JSON list of
``{t, stage, from, to, reason}``. None: rows of older versions.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("failovers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite rebuilds the table to drop columns
        batch.drop_column("failovers")
