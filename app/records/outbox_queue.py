"""The post-call webhook's queue rows, written by ``CallStore.save`` in the transaction that
completes a call's record (``app.records.outbox`` claims and sends them)."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from app.records.models import WebhookOutboxRow

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


async def enqueue(session: AsyncSession, call_id: str, due_at: float, *, hasten: bool = False) -> None:
    """Queue the call's delivery from ``due_at``, inside the caller's transaction. A pending row
    gets the new time (``hasten``: only if sooner); a delivered or failed one never changes (a
    socket reconnecting after delivery does not send the call twice)."""
    row = await session.get(WebhookOutboxRow, call_id, with_for_update=True)
    if row is None:
        session.add(WebhookOutboxRow(call_id=call_id, status=PENDING, created_at=time.time(), due_at=due_at,
                                     attempts=0))  # fmt: skip
    elif row.status == PENDING:
        row.due_at = min(row.due_at, due_at) if hasten else due_at
