"""Per-call counters of preemptive replies: started, committed, and wasted (discarded after their
LLM request began). None: the agent does not count them (rows of older versions, echo agents).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ("preemptive_started", "preemptive_committed", "preemptive_wasted")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("calls", sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite rebuilds the table to drop columns
        for name in reversed(COLUMNS):
            batch.drop_column(name)
