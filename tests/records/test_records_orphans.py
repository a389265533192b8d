"""A process killed mid-call leaves its call in progress; the signed hang-up callback completes
the record (cause, duration), and the next start-up marks it ended as ``process-died``. A row
whose process is alive, or lives on another host, is left alone. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.config import Settings
from app.main import create_app
from app.records.owner import is_dead, this_process
from app.records.record import CallRecord
from app.records.store import CallStore
from app.telephony.signature import sign_headers
from tests.records.conftest import API_KEY
from tests.records.test_records_calls import CRASH, ROOT, T0, running

AUTH_TOKEN = "orphans-auth-token-0123"
HANGUP_URL = "https://agent.example.com/vobiz/hangup"


async def crash_mid_call(database_url: str, data_dir: Path) -> None:
    """A service process carries "crashed-call" and dies mid-call (no clean-up at all)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH, database_url, str(data_dir), cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await process.communicate()
    assert process.returncode == 3, errors.decode()


@contextlib.asynccontextmanager
async def without_start_up(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client
    finally:
        await app.state.call_records.aclose()


async def stored(database_url: str, call_id: str) -> CallRecord:
    store = CallStore(make_url(database_url))
    try:
        record = await store.get(call_id)
    finally:
        await store.aclose()
    assert record is not None
    return record


async def test_a_start_up_ends_the_calls_of_a_dead_process_only(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    await crash_mid_call(database_url, tmp_path / "data")
    crashed = await stored(database_url, "crashed-call")
    assert crashed.status == "in-progress"
    assert is_dead(crashed.owner)
    store = CallStore(make_url(database_url))
    try:  # a call this process carries, and one another host carries
        await store.insert_started(
            CallRecord("live-call", "in-progress", "default", "", "", T0, owner=this_process())
        )
        elsewhere = "other-host:0123abcd:42:1234"
        await store.insert_started(
            CallRecord("far-call", "in-progress", "default", "", "", T0, owner=elsewhere)
        )
    finally:
        await store.aclose()

    async with running(create_app(make_settings(database_url=database_url, calls_api_key=API_KEY))):
        pass  # the start-up looks for orphans
    crashed = await stored(database_url, "crashed-call")
    assert (crashed.status, crashed.end_reason, crashed.ended_at) == ("completed", "process-died", None)
    assert (await stored(database_url, "live-call")).status == "in-progress"
    assert (await stored(database_url, "far-call")).status == "in-progress"


@pytest.mark.parametrize("restarted", [False, True], ids=["in-progress", "process-died"])
async def test_the_signed_hang_up_callback_completes_an_orphaned_record(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path, restarted: bool
) -> None:
    await crash_mid_call(database_url, tmp_path / "data")
    settings = make_settings(database_url=database_url, signature_mode="enforce", vobiz_auth_token=AUTH_TOKEN)
    app = create_app(settings)
    started = (await stored(database_url, "crashed-call")).started_at
    form = {"CallUUID": "crashed-call", "Event": "Hangup", "HangupCause": "NORMAL_CLEARING", "Duration": "37"}
    # restarted: a new process took the callback (its start-up ended the call as process-died);
    # else: a replica that started before the crash (no start-up in between)
    serving = running(app) if restarted else without_start_up(app)
    async with serving as client:
        forged = await client.post("/vobiz/hangup", data={**form, "Duration": "1"})
        assert forged.status_code == 403  # unsigned: ignored
        reply = await client.post("/vobiz/hangup", data=form, headers=sign_headers(HANGUP_URL, AUTH_TOKEN))
        assert reply.status_code == 204
    record = await stored(database_url, "crashed-call")
    reason = "process-died" if restarted else "hangup"
    assert (record.status, record.end_reason, record.hangup_cause) == ("completed", reason, "NORMAL_CLEARING")
    assert record.ended_at == pytest.approx(started + 37)
    assert record.summary.duration == pytest.approx(37)


async def test_the_hang_up_callback_never_changes_a_completed_record(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    store = CallStore(make_url(database_url))
    done = CallRecord("done-call", "completed", "default", "", "", T0, T0 + 5, "socket-closed")
    try:
        await store.save(done)
    finally:
        await store.aclose()
    async with running(create_app(make_settings(database_url=database_url))) as client:
        form = {
            "CallUUID": "done-call",
            "Event": "Hangup",
            "HangupCause": "NORMAL_CLEARING",
            "Duration": "99",
        }
        assert (await client.post("/vobiz/hangup", data=form)).status_code == 204
    assert await stored(database_url, "done-call") == done
