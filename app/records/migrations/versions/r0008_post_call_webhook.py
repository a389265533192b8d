"""Post-call webhook: the ``webhook_outbox`` table (one delivery per call, claimed by a lease) and
the call's ``summary`` and ``disposition`` (written after the call by the language model).

Revision ID: 0008
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("summary", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("disposition", sa.String(), nullable=True))
    op.create_table(
        "webhook_outbox",
        sa.Column("call_id", sa.String(), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("due_at", sa.Double(), nullable=False),
        sa.Column("first_try_at", sa.Double(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", sa.Double(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
    )
    op.create_index("ix_webhook_outbox_status_due_at", "webhook_outbox", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_status_due_at", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("disposition")
        batch.drop_column("summary")
