"""``CallStore``: call records in SQL through SQLAlchemy's async engine.

SQLite (aiosqlite) by default, in ``DATA_DIR/calls.sqlite3``; PostgreSQL (asyncpg) when
``DATABASE_URL`` names it. Every query runs on the async driver, so the event loop never blocks;
the service writes only when a call starts and when it ends. The schema is Alembic's
(``migrations/``): ``migrate`` brings the database to the newest revision, once per store.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, and_, event, or_, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from app.config import Settings
from app.logs import quiet_query_logs
from app.records.models import CallRow
from app.records.outbox_queue import enqueue
from app.records.record import (
    COMPLETED,
    HANGUP,
    IN_PROGRESS,
    PROCESS_DIED,
    CallRecord,
    CallSummary,
    DtmfEntry,
    ToolUse,
    TranscriptLine,
    failover_entry,
)
from app.records.segments import continued

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DATABASE_FILE = "calls.sqlite3"  # in DATA_DIR, when DATABASE_URL is empty
# a URL without a driver gets the async one this project installs
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


class DatabaseURLError(ValueError):
    """DATABASE_URL cannot be used; the message never holds the password."""


class UnknownCall(LookupError):
    """``before`` named a call that has no record."""


def database_url(settings: Settings) -> URL:
    """``DATABASE_URL`` as an async SQLAlchemy URL; empty means SQLite in ``DATA_DIR``."""
    text = settings.database_url.get_secret_value().strip()
    if not text:
        return URL.create("sqlite+aiosqlite", database=str(settings.data_dir / DATABASE_FILE))
    try:
        url = make_url(text)
    except ArgumentError:
        raise DatabaseURLError("DATABASE_URL is not a database URL (e.g. postgresql+asyncpg://…)") from None
    url = url.set(drivername=ASYNC_DRIVERS.get(url.drivername, url.drivername))
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise DatabaseURLError(
            f"DATABASE_URL: driver {url.drivername!r} is not supported "
            "(use sqlite+aiosqlite or postgresql+asyncpg)"
        )
    return url


def _is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


class CallStore:
    """Reads and writes call records. Build it anywhere (it connects on first use); ``aclose``
    at the end. Each method is a short transaction of its own."""

    def __init__(self, url: URL) -> None:
        self.url = url
        quiet_query_logs()  # nor the driver's own DEBUG lines
        options: dict[str, Any] = {"hide_parameters": True}  # errors and logs never show a transcript
        if url.get_backend_name() == "sqlite":
            # a connection per use: SQLite opens in about a millisecond, and no pooled connection
            # outlives the event loop it was made on (tests, the CLI's asyncio.run)
            options["poolclass"] = StaticPool if _is_memory(url) else NullPool
        else:
            options["pool_pre_ping"] = True  # a replica survives a database restart between calls
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time: this store's writes queue in order (``_writing``)
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] | None = (
            weakref.WeakKeyDictionary() if url.get_backend_name() == "sqlite" else None
        )
        self._migrated = False
        self._migrating = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> CallStore:
        return cls(database_url(settings))

    @property
    def where(self) -> str:
        """The database, for messages: the URL without its password."""
        return self.url.render_as_string(hide_password=True)

    def exists(self) -> bool:
        """False only for a SQLite file that is not there yet (nothing was ever recorded)."""
        if self.url.get_backend_name() != "sqlite" or _is_memory(self.url):
            return True
        return Path(self.url.database or "").is_file()

    async def migrate(self) -> None:
        """Create or upgrade the tables to the newest migration (once per store; safe to repeat)."""
        async with self._migrating:
            if self._migrated:
                return
            if self.url.get_backend_name() == "sqlite" and not _is_memory(self.url):
                Path(self.url.database or "").parent.mkdir(parents=True, exist_ok=True)
            async with _process_lock(), self.engine.begin() as connection:
                await connection.run_sync(_upgrade_to_head)
            self._migrated = True

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction. On SQLite this store's writes take turns here, first come first
        served: left to the file's lock, a burst of call starts (100 calls at once) had each
        writer retry on ``busy_timeout``'s back-off, some for seconds, and some failed (``database
        is locked``), while the callers waited for their rows. PostgreSQL writes run side by side."""
        locks = self._write_locks
        if locks is None:
            async with self._sessions.begin() as session:
                yield session
            return
        loop = asyncio.get_running_loop()
        lock = locks.get(loop) or locks.setdefault(loop, asyncio.Lock())
        async with lock, self._sessions.begin() as session:
            yield session

    def writing(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A write transaction in this store's queue (``records.outbox`` writes through it)."""
        return self._writing()

    def reading(self) -> AsyncSession:
        """A session for reads (``async with``)."""
        return self._sessions()

    async def insert_started(self, record: CallRecord) -> None:
        """The in-progress row of a call that has just started. A second socket for the same
        call (a reconnect) marks the existing row in progress again; its end continues it (``save``)."""
        await self.migrate()
        async with self._writing() as session:
            row = await session.get(CallRow, record.call_id)
            if row is None:
                session.add(_row(record))
            else:
                row.status, row.owner = IN_PROGRESS, record.owner

    async def end_orphans(self, is_dead: Callable[[str], bool]) -> list[str]:
        """Mark the calls in progress whose owner ``is_dead`` as ended (``process-died``); their
        end time is unknown (None). Returns their ids."""
        await self.migrate()
        async with self._writing() as session:
            rows = (await session.scalars(select(CallRow).where(CallRow.status == IN_PROGRESS))).all()
            dead = [row for row in rows if is_dead(row.owner or "")]
            for row in dead:
                row.status, row.end_reason = COMPLETED, PROCESS_DIED
            return [row.call_id for row in dead]

    async def complete_from_hangup(
        self,
        call_id: str,
        cause: str,
        duration_s: float | None,
        now: float,
        *,
        webhook_due: float | None = None,
    ) -> bool:
        """Vobiz's hang-up callback for a call no session here is carrying: a row still in
        progress (its process died, or has not yet written the end) is completed as ``hangup``;
        a ``process-died`` row gets the real end. The end is ``started_at + duration_s``, else
        ``now``. Any other row never changes. True if a row was written.

        ``webhook_due``: the call has surely ended, so its post-call webhook is due then (queued
        with the row, or a queued one that waits for a reconnect that will not come is hastened)."""
        await self.migrate()
        async with self._writing() as session:
            row = await session.get(CallRow, call_id)
            if webhook_due is not None and row is not None:
                await enqueue(session, call_id, webhook_due, hasten=True)
            if row is None or not (row.status == IN_PROGRESS or row.end_reason == PROCESS_DIED):
                return False
            if row.status == IN_PROGRESS:
                row.status, row.end_reason = COMPLETED, HANGUP
            row.hangup_cause = cause
            row.ended_at = now if duration_s is None else row.started_at + duration_s
            return True

    async def mark_answered_by(self, call_id: str, who: str) -> bool:
        """Note in the call's ``stats`` who answered (``machine``: Vobiz's answering-machine
        detection said so); kept when the session writes its end (stats are merged). True if
        the call has a row."""
        await self.migrate()
        async with self._writing() as session:
            row = await session.get(CallRow, call_id, with_for_update=True)
            if row is None:
                return False
            row.stats = {**(row.stats or {}), "answered_by": who}
            return True

    async def save(self, record: CallRecord, *, webhook_due: float | None = None) -> None:
        """Write the record of a socket's part of its call: insert it, or continue the row of the
        same call (``segments.continued``: the row's own in-progress start, or the parts of the
        sockets before a reconnect, which stay). The row is locked while it is read and written
        (PostgreSQL; SQLite has one writer at a time), so two writers cannot lose a part.

        ``webhook_due`` (unix seconds): the call's post-call webhook is queued, in the same
        transaction, to be sent from then on (``records.outbox``)."""
        await self.migrate()
        async with self._writing() as session:
            row = await session.get(CallRow, record.call_id, with_for_update=True)
            if row is None:
                session.add(_row(record))
            else:
                for name, value in _values(continued(_record(row), record)).items():
                    setattr(row, name, value)
            if webhook_due is not None:
                await enqueue(session, record.call_id, webhook_due)

    async def get(self, call_id: str) -> CallRecord | None:
        await self.migrate()
        async with self._sessions() as session:
            row = await session.get(CallRow, call_id)
            return None if row is None else _record(row)

    async def recent(
        self, limit: int = 50, before: str | None = None
    ) -> tuple[list[CallSummary], str | None]:
        """Up to ``limit`` calls, newest first, after the call ``before`` (the previous page's
        last); and the ``before`` of the next page, or None when this is the last one."""
        await self.migrate()
        columns = (CallRow.call_id, CallRow.status, CallRow.persona, CallRow.caller, CallRow.called,
                   CallRow.started_at, CallRow.ended_at, CallRow.end_reason)  # fmt: skip
        query = select(*columns).order_by(CallRow.started_at.desc(), CallRow.call_id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            if before is not None:
                anchor = await session.scalar(select(CallRow.started_at).where(CallRow.call_id == before))
                if anchor is None:
                    raise UnknownCall(before)
                older = and_(CallRow.started_at == anchor, CallRow.call_id < before)  # same second
                query = query.where(or_(CallRow.started_at < anchor, older))
            rows = (await session.execute(query)).all()
        page = [CallSummary(*row) for row in rows[:limit]]
        return page, (page[-1].call_id if len(rows) > limit else None)

    async def aclose(self) -> None:
        await self.engine.dispose()


_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    """One migration at a time in this process: Alembic's ``context`` is a module global, so two
    stores migrating at once on one loop would trample each other. (Replicas are processes: on
    PostgreSQL the advisory lock in ``migrations/env.py`` orders them.)"""
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return lock


def _upgrade_to_head(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: a reader (the CLI, GET /calls) never waits for the service's writes; a writer waits up
    # to 5 s for another instead of failing at once
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: consistent after a crash, fewer fsyncs
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _values(record: CallRecord) -> dict[str, Any]:
    return {
        "status": record.status,
        "persona": record.persona,
        "caller": record.caller,
        "called": record.called,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "end_reason": record.end_reason,
        "agent": record.agent,
        "barge_ins": record.barge_ins,
        "false_interruptions": record.false_interruptions,
        "provider_errors": record.provider_errors,
        "preemptive_started": record.preemptive_started,
        "preemptive_committed": record.preemptive_committed,
        "preemptive_wasted": record.preemptive_wasted,
        "stats": dict(record.stats),
        "transcript": [dict(line) for line in record.transcript],
        "tool_calls": [dict(use) for use in record.tool_calls],
        "latency": [dict(turn) for turn in record.latency],
        "owner": record.owner or None,
        "hangup_cause": record.hangup_cause,
        "failovers": [dict(f) for f in record.failovers],
        "dtmf": [dict(entry) for entry in record.dtmf],
        "usage": dict(record.usage) or None,
        "recording": record.recording,
        "summary": record.summary_text,
        "disposition": record.disposition,
    }


def _row(record: CallRecord) -> CallRow:
    return CallRow(call_id=record.call_id, **_values(record))


def _record(row: CallRow) -> CallRecord:
    return CallRecord(
        call_id=row.call_id,
        status=row.status,
        persona=row.persona,
        caller=row.caller,
        called=row.called,
        started_at=row.started_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        agent=row.agent,
        barge_ins=row.barge_ins,
        false_interruptions=row.false_interruptions,
        provider_errors=row.provider_errors,
        preemptive_started=row.preemptive_started,
        preemptive_committed=row.preemptive_committed,
        preemptive_wasted=row.preemptive_wasted,
        stats=row.stats,
        transcript=tuple(
            TranscriptLine(t=e["t"], speaker=e["speaker"], text=e["text"], interrupted=e["interrupted"])
            for e in row.transcript
        ),
        tool_calls=tuple(
            ToolUse(id=u["id"], name=u["name"], arguments=u["arguments"]) for u in row.tool_calls
        ),
        latency=tuple(dict(turn) for turn in row.latency),
        owner=row.owner or "",
        hangup_cause=row.hangup_cause,
        failovers=tuple(
            failover_entry(f["t"], f["stage"], f["from"], f["to"], f["reason"]) for f in row.failovers or ()
        ),
        dtmf=tuple(DtmfEntry(t=e["t"], digits=e["digits"], purpose=e["purpose"]) for e in row.dtmf or ()),
        usage=row.usage or {},
        recording=row.recording,
        summary_text=row.summary,
        disposition=row.disposition,
    )
