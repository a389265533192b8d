"""Who holds a call in progress (``owner``), and the hang-up cause Vobiz reported.

``owner`` lets a process starting up mark the rows of a process that died mid-call as ended
(``process-died``); ``hangup_cause`` comes from the signed hang-up callback.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("owner", sa.String(), nullable=True))
    op.add_column("calls", sa.Column("hangup_cause", sa.String(), nullable=True))
    op.create_index("ix_calls_status", "calls", ["status"])


def downgrade() -> None:
    op.drop_index("ix_calls_status", table_name="calls")
    with op.batch_alter_table("calls") as batch:  # SQLite rebuilds the table to drop columns
        batch.drop_column("hangup_cause")
        batch.drop_column("owner")
