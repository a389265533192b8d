"""Per-call usage: STT seconds, LLM tokens, TTS characters, wasted preemptive LLM calls and the
estimated cost, with a per-provider breakdown (JSON). None: not counted (rows of older versions,
echo agents).

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("usage", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite rebuilds the table to drop columns
        batch.drop_column("usage")
