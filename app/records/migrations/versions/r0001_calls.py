"""The calls table: one row per call, inserted at its start and completed at its end.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("persona", sa.String(), nullable=False),
        sa.Column("caller", sa.String(), nullable=False),
        sa.Column("called", sa.String(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("barge_ins", sa.Integer(), nullable=True),
        sa.Column("false_interruptions", sa.Integer(), nullable=True),
        sa.Column("provider_errors", sa.Integer(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("tool_calls", sa.JSON(), nullable=False),
        sa.Column("latency", sa.JSON(), nullable=False),
    )
    op.create_index("ix_calls_started_at_call_id", "calls", ["started_at", "call_id"])


def downgrade() -> None:
    op.drop_index("ix_calls_started_at_call_id", table_name="calls")
    op.drop_table("calls")
