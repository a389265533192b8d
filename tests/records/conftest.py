"""The call-record tests run on SQLite and on PostgreSQL: the ``database_url`` fixture is both.

PostgreSQL is the one in ``TEST_DATABASE_URL`` (``.ci/run`` starts a throwaway server and sets
it); its tables are dropped before each test, so point it at a database kept for tests. Where it
is not set, the PostgreSQL cases FAIL, saying how to run them: a green run must mean both
databases were tested. ``SKIP_POSTGRES_TESTS=1`` skips them instead, and pytest counts the skips.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

API_KEY = "records-test-key-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no call records; sync, so async tests and the CLI's sync ones share it."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'records' / 'calls.sqlite3'}"
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        if os.environ.get("SKIP_POSTGRES_TESTS") == "1":
            pytest.skip("SKIP_POSTGRES_TESTS=1: the PostgreSQL call-record tests were not run")
        pytest.fail(
            "TEST_DATABASE_URL is not set: the call-record tests need a PostgreSQL database they may wipe, "
            "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/voice_agent_test (.ci/run starts one), "
            "or SKIP_POSTGRES_TESTS=1 to skip them"
        )
    with ThreadPoolExecutor(1) as pool:  # a loop of its own, away from the test's
        pool.submit(asyncio.run, _wipe(url)).result()
    return url


async def _wipe(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS calls, alembic_version"))
    finally:
        await engine.dispose()
