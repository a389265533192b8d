"""The caller's phone keys per call: a JSON list of {t, digits, purpose}. NULL in rows written
before it (read as no keys).

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("dtmf", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite rebuilds the table to drop columns
        batch.drop_column("dtmf")
