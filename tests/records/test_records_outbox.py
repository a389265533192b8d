"""The post-call webhook's outbox on SQLite and PostgreSQL: queued with the record it sends,
claimed by one process at a time, hastened by the hang-up callback, never re-sent once final."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy.engine import make_url

from app.records.outbox import DELIVERED, PENDING, Outbox
from app.records.record import IN_PROGRESS
from app.records.store import CallStore
from tests.records.test_records_store import T0, full_record

LEASE = 60.0


async def test_the_delivery_is_queued_with_the_record_and_claimed_once(database_url: str) -> None:
    store = _store(database_url)
    try:
        await store.save(full_record("c-1"), webhook_due=T0)
        await store.save(full_record("c-2"))  # without a webhook: nothing queued
        one, two = Outbox(store, "proc-a"), Outbox(store, "proc-b")
        assert await one.due(T0 - 1) == []  # not yet due
        assert await one.due(T0) == ["c-1"]
        # both processes race for it: exactly one wins
        claims = await asyncio.gather(one.claim("c-1", T0, LEASE), two.claim("c-1", T0, LEASE))
        assert sum(c is not None for c in claims) == 1
        assert await two.due(T0 + 1) == []  # held by a lease
        assert await two.due(T0 + LEASE + 1) == ["c-1"]  # a dead holder's lease runs out
        winner = one if claims[0] is not None else two
        loser = two if winner is one else one
        assert await winner.renew("c-1", T0 + 10, LEASE)
        assert not await loser.renew("c-1", T0 + 10, LEASE)
        await winner.attempted("c-1", '{"call_id":"c-1"}', T0 + 10, 503, None)
        taken = await loser.claim("c-1", T0 + 10 + LEASE + 1, LEASE)  # the winner died meanwhile
        assert taken is not None
        assert (taken.attempts, taken.first_try_at, taken.body) == (1, T0 + 10, '{"call_id":"c-1"}')
        assert not await winner.renew("c-1", T0 + 100, LEASE)  # it lost it
        await loser.finish("c-1", DELIVERED, T0 + 100)
        # a reconnect's record after delivery does not queue the call again
        await store.save(full_record("c-1"), webhook_due=T0 + 200)
        row = await one.get("c-1")
        assert row is not None
        assert row.status == DELIVERED
        assert await one.due(T0 + 1000) == []
    finally:
        await store.aclose()


async def test_the_hangup_callback_hastens_a_delivery_waiting_for_a_reconnect(database_url: str) -> None:
    store = _store(database_url)
    try:
        await store.save(full_record("c-1"), webhook_due=T0 + 30)  # a dropped socket: waits 30 s
        outbox = Outbox(store, "proc-a")
        assert await outbox.due(T0 + 1) == []
        await store.complete_from_hangup("c-1", "NORMAL_CLEARING", None, T0 + 1, webhook_due=T0 + 1)
        assert await outbox.due(T0 + 1) == ["c-1"]
        # an orphan (its process died mid-call) is completed and queued by the callback
        await store.insert_started(dataclasses.replace(full_record("c-2"), status=IN_PROGRESS))
        assert await store.complete_from_hangup("c-2", "NORMAL_CLEARING", 12.0, T0 + 5, webhook_due=T0 + 5)
        assert await outbox.due(T0 + 5) == ["c-1", "c-2"]
        row = await outbox.get("c-2")
        assert row is not None
        assert row.status == PENDING
    finally:
        await store.aclose()


async def test_summary_and_disposition_are_kept_in_the_record(database_url: str) -> None:
    store = _store(database_url)
    try:
        await store.save(full_record("c-1"))
        await Outbox(store, "proc-a").annotate("c-1", "Booked a table for two.", "booked")
        record = await store.get("c-1")
        assert record is not None
        assert (record.summary_text, record.disposition) == ("Booked a table for two.", "booked")
        assert record.to_json()["summary"] == "Booked a table for two."
        assert record.to_json()["disposition"] == "booked"
    finally:
        await store.aclose()


def _store(url: str) -> CallStore:
    return CallStore(make_url(url))


async def test_a_later_socket_keeps_the_summary_written_after_the_first_ended(database_url: str) -> None:
    store = _store(database_url)
    try:
        await store.save(full_record("c-1"))
        await Outbox(store, "proc-a").annotate("c-1", "Wants a call back.", "callback")
        later = dataclasses.replace(full_record("c-1", started_at=T0 + 50), transcript=())
        await store.save(later)  # a reconnect's part continues the record
        record = await store.get("c-1")
        assert record is not None
        assert (record.summary_text, record.disposition) == ("Wants a call back.", "callback")
        assert record.ended_at == later.ended_at  # it did continue the record
    finally:
        await store.aclose()
