"""The call's recording: its file name in DATA_DIR/recordings, or None (not recorded).

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
# "0003" in the brief; chained after main's 0004 so this branch has one head (the lead re-chains)
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("recording", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite rebuilds the table to drop columns
        batch.drop_column("recording")
