"""``CallStore`` on SQLite and PostgreSQL: migrations, round trips, paging, URLs."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.records.models import Base
from app.records.record import COMPLETED, IN_PROGRESS, CallRecord
from app.records.store import CallStore, DatabaseURLError, UnknownCall, database_url

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600.25  # unix seconds


def full_record(call_id: str = "call-1", started_at: float = T0) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        status=COMPLETED,
        persona="restaurant",
        caller="14155550100",
        called="14155550199",
        started_at=started_at,
        ended_at=started_at + 42.5,
        end_reason="app sent stop",
        agent="Conversation",
        barge_ins=1,
        false_interruptions=0,
        provider_errors=2,
        preemptive_started=3,
        preemptive_committed=2,
        preemptive_wasted=1,
        stats={"frames_in": 2125, "frames_out": 1800, "protocol_errors": {}},
        transcript=(
            {"t": 0.12, "speaker": "agent", "text": "Buonasera, Bella Napoli!", "interrupted": False},
            {"t": 3.5, "speaker": "caller", "text": "Ciao — a table for four? 🍕", "interrupted": False},
            {"t": 6.25, "speaker": "agent", "text": "We have a lovely", "interrupted": True},
        ),
        tool_calls=({"id": "t1", "name": "reserve_table", "arguments": '{"party": "four", "name": "Kim"}'},),
        latency=(
            {
                "turn": 0,
                "speech_end": None,
                "stt_final": None,
                "first_play_audio": 0.12,
                "interrupted": False,
            },
            {"turn": 1, "speech_end": 4.0, "stt_final": 4.31, "first_play_audio": 4.9, "interrupted": True},
        ),
        dtmf=(
            {"t": 2.5, "digits": "1", "purpose": "menu"},
            {"t": 6.0, "digits": "12345678", "purpose": "collect"},
        ),
    )


def schema_differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migrations_build_the_models_schema_once(database_url: str) -> None:
    store = CallStore(make_url(database_url))
    try:
        await store.migrate()
        await store.migrate()  # once per store
        async with store.engine.connect() as connection:
            assert await connection.run_sync(schema_differences) == []
            assert (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar() == "0008"
    finally:
        await store.aclose()
    again = CallStore(make_url(database_url))  # a restart: the schema is current, nothing changes
    try:
        await again.save(full_record())
        await again.migrate()
        assert await again.get("call-1") == full_record()
    finally:
        await again.aclose()


MIGRATE = (
    "import asyncio, sys; from sqlalchemy import make_url; from app.records.store import CallStore; "
    "store = CallStore(make_url(sys.argv[1])); asyncio.run(store.migrate()); asyncio.run(store.aclose())"
)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_replicas_starting_together_migrate_one_after_the_other(database_url: str) -> None:
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", MIGRATE, database_url, cwd=ROOT, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    errors = [(await replica.communicate())[1].decode() for replica in replicas]
    assert [replica.returncode for replica in replicas] == [0, 0, 0], errors
    store = CallStore(make_url(database_url))
    try:
        await store.save(full_record())
        assert await store.get("call-1") == full_record()
    finally:
        await store.aclose()


async def test_stores_of_one_process_migrate_together(database_url: str) -> None:
    stores = [CallStore(make_url(database_url)) for _ in range(3)]
    try:
        await asyncio.gather(*(store.migrate() for store in stores))
        await stores[0].save(full_record())
        assert await stores[2].get("call-1") == full_record()
    finally:
        for store in stores:
            await store.aclose()


async def test_a_call_is_in_progress_until_its_whole_record_is_saved(database_url: str) -> None:
    store = CallStore(make_url(database_url))
    try:
        started = CallRecord("call-1", IN_PROGRESS, "restaurant", "14155550100", "14155550199", T0)
        await store.insert_started(started)
        assert await store.get("call-1") == started
        assert await store.get("call-2") is None
        await store.save(full_record())
        assert await store.get("call-1") == full_record()  # unicode, JSON text, None stamps intact
        await store.insert_started(started)  # a second socket for the same call: in progress again
        back = await store.get("call-1")
        assert back is not None
        assert (back.status, back.transcript) == (IN_PROGRESS, full_record().transcript)
    finally:
        await store.aclose()


async def test_a_record_saved_without_its_start_row_is_inserted(database_url: str) -> None:
    store = CallStore(make_url(database_url))
    try:
        await store.save(full_record())  # e.g. the insert at the start timed out
        assert await store.get("call-1") == full_record()
    finally:
        await store.aclose()


async def test_calls_come_newest_first_in_pages(database_url: str) -> None:
    store = CallStore(make_url(database_url))
    starts = {"a": T0, "b": T0 + 10, "c": T0 + 10, "d": T0 + 20, "e": T0 + 30}  # b and c: the same time
    try:
        for call_id, started_at in starts.items():
            await store.save(full_record(call_id, started_at))
        seen: list[str] = []
        before: str | None = None
        pages = 0
        while True:
            page, before = await store.recent(limit=2, before=before)
            seen += [call.call_id for call in page]
            pages += 1
            if before is None:
                break
        assert seen == ["e", "d", "c", "b", "a"]
        assert pages == 3
        everything, more = await store.recent(limit=5)
        assert [c.call_id for c in everything] == seen
        assert more is None
        assert everything[0].duration == 42.5
        with pytest.raises(UnknownCall):
            await store.recent(before="no-such-call")
    finally:
        await store.aclose()


def test_an_empty_database_url_is_sqlite_in_the_data_dir(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    url = database_url(make_settings(data_dir=tmp_path / "d"))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "d" / "calls.sqlite3")


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://agent:pw@db.internal:5432/calls", "postgresql+asyncpg"),
        ("postgres://agent:pw@db.internal/calls", "postgresql+asyncpg"),
        ("postgresql+asyncpg://agent:pw@db.internal/calls", "postgresql+asyncpg"),
        ("sqlite:////var/lib/agent/calls.sqlite3", "sqlite+aiosqlite"),
    ],
)
def test_urls_without_an_async_driver_get_one(
    given: str, driver: str, make_settings: Callable[..., Settings]
) -> None:
    assert database_url(make_settings(database_url=given)).drivername == driver


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("mysql://agent:hunter2@db/calls", "driver 'mysql' is not supported"),
        ("postgresql+psycopg2://agent:hunter2@db/calls", "driver 'postgresql+psycopg2' is not supported"),
        ("not a url hunter2", "not a database URL"),
    ],
)
def test_unusable_urls_are_refused_without_the_password(
    given: str, error: str, make_settings: Callable[..., Settings]
) -> None:
    with pytest.raises(DatabaseURLError, match=re.escape(error)) as info:
        database_url(make_settings(database_url=given))
    assert "hunter2" not in str(info.value)


def test_the_store_names_its_database_without_the_password() -> None:
    store = CallStore(make_url("postgresql+asyncpg://agent:hunter2@127.0.0.1:1/calls"))
    assert store.where == "postgresql+asyncpg://agent:***@127.0.0.1:1/calls"


async def test_a_burst_of_call_starts_and_ends_is_written_whole(database_url: str) -> None:
    """100 calls starting at once, then ending at once (the greetings benchmark's burst): every
    row is written, none fails on the database's lock (SQLite's writers take turns in the store)."""
    store = CallStore(make_url(database_url))
    try:
        await store.migrate()
        ids = [f"burst-{i}" for i in range(100)]
        starts = [CallRecord(c, IN_PROGRESS, "default", "", "", T0 + i) for i, c in enumerate(ids)]
        await asyncio.gather(*(store.insert_started(r) for r in starts))
        assert [(await store.get(c)) is not None for c in ids] == [True] * 100
        await asyncio.gather(*(store.save(full_record(c, T0 + i)) for i, c in enumerate(ids)))
        page, _ = await store.recent(limit=200)
        assert sorted(s.call_id for s in page) == sorted(ids)
        assert {s.status for s in page} == {COMPLETED}
    finally:
        await store.aclose()
