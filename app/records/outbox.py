"""The post-call webhook's outbox: one row per call in ``webhook_outbox``, queued in the transaction
that completes the call's record (``CallStore.save``), so a delivery survives a restart.

A process claims a due row with one conditional ``UPDATE`` (its lease has run out, or it never
had one): the database lets exactly one of several workers or replicas win, so a delivery is
never made twice at once. The holder renews the lease before each attempt; a process that dies
holding one leaves a lease that runs out, and the row is claimed again (at another process's
start-up or sweep). Rows are delivered at least once; receivers dedupe on ``Idempotency-Key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from app.records.models import CallRow, WebhookOutboxRow

if TYPE_CHECKING:
    from app.records.store import CallStore

from app.records.outbox_queue import DELIVERED, FAILED, PENDING, enqueue

__all__ = ["DELIVERED", "FAILED", "PENDING", "Delivery", "Outbox", "enqueue"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed row: ``body`` is None until the first attempt fixes it."""

    call_id: str
    attempts: int
    first_try_at: float | None
    body: str | None


class Outbox:
    """Reads and writes ``webhook_outbox`` through a ``CallStore`` (its engine and write queue)."""

    def __init__(self, store: CallStore, owner: str) -> None:
        self.store = store
        self.owner = owner  # this process's lease id

    async def due(self, now: float, limit: int = 20) -> list[str]:
        """Ids of pending deliveries due by ``now`` whose lease (if any) has run out."""
        await self.store.migrate()
        query = (
            select(WebhookOutboxRow.call_id)
            .where(_claimable(now))
            .order_by(WebhookOutboxRow.due_at)
            .limit(limit)
        )
        async with self.store.reading() as session:
            return list((await session.scalars(query)).all())

    async def claim(self, call_id: str, now: float, lease_s: float) -> Delivery | None:
        """Take the row for ``lease_s`` seconds; None if another process holds it, or it is no
        longer due (delivered, failed, postponed)."""
        await self.store.migrate()
        async with self.store.writing() as session:
            taken = await session.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.call_id == call_id, _claimable(now))
                .values(lease_owner=self.owner, lease_until=now + lease_s)
                .execution_options(synchronize_session=False)
            )
            if getattr(taken, "rowcount", 0) != 1:
                return None
            row = await session.get(WebhookOutboxRow, call_id)
            assert row is not None
            return Delivery(row.call_id, row.attempts, row.first_try_at, row.body)

    async def renew(self, call_id: str, now: float, lease_s: float) -> bool:
        """Extend this process's lease; False if it was lost (it ran out and another took it)."""
        async with self.store.writing() as session:
            kept = await session.execute(
                update(WebhookOutboxRow)
                .where(
                    WebhookOutboxRow.call_id == call_id,
                    WebhookOutboxRow.lease_owner == self.owner,
                    WebhookOutboxRow.status == PENDING,
                )
                .values(lease_until=now + lease_s)
                .execution_options(synchronize_session=False)
            )
            return getattr(kept, "rowcount", 0) == 1

    async def attempted(
        self, call_id: str, body: str, now: float, status: int | None, error: str | None
    ) -> None:
        """One attempt was made (its HTTP status, or the error's type): counted; the body is fixed."""
        async with self.store.writing() as session:
            row = await session.get(WebhookOutboxRow, call_id, with_for_update=True)
            if row is None:
                return
            row.attempts += 1
            row.body = body
            row.first_try_at = row.first_try_at if row.first_try_at is not None else now
            row.last_status, row.last_error = status, error

    async def finish(self, call_id: str, status: str, now: float) -> None:
        """Delivered or failed for good: the lease is released."""
        async with self.store.writing() as session:
            await session.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.call_id == call_id)
                .values(status=status, finished_at=now, lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    async def postpone(self, call_id: str, due_at: float) -> None:
        """Not yet (the call is in progress again): released, due again at ``due_at``."""
        async with self.store.writing() as session:
            await session.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.call_id == call_id, WebhookOutboxRow.status == PENDING)
                .values(due_at=due_at, lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    async def annotate(self, call_id: str, summary: str | None, disposition: str | None) -> None:
        """The call's summary and disposition, into its record."""
        async with self.store.writing() as session:
            await session.execute(
                update(CallRow)
                .where(CallRow.call_id == call_id)
                .values(summary=summary, disposition=disposition)
                .execution_options(synchronize_session=False)
            )

    async def get(self, call_id: str) -> WebhookOutboxRow | None:
        """The row as stored (tests, the CLI)."""
        await self.store.migrate()
        async with self.store.reading() as session:
            return await session.get(WebhookOutboxRow, call_id)


def _claimable(now: float) -> ColumnElement[bool]:
    row = WebhookOutboxRow
    return and_(
        row.status == PENDING,
        row.due_at <= now,
        or_(row.lease_until.is_(None), row.lease_until < now),
    )
