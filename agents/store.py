"""The example agents' data: one SQLite file (``DATA_DIR/agents.sqlite3``), stdlib ``sqlite3``.

Each call to :func:`run` opens the file, applies the schema (idempotent), runs one function in a
transaction and closes it, in a worker thread: SQLite is blocking and the event loop carries
every call's audio. Concurrent writers are serialised by SQLite's own locking (``timeout``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from agents.tools import ToolContext

T = TypeVar("T")

DB_NAME = "agents.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS appointments (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    time TEXT NOT NULL,
    patient TEXT NOT NULL,
    call_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE (day, time)
);
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    time TEXT NOT NULL,
    party INTEGER NOT NULL CHECK (party BETWEEN 1 AND 20),
    name TEXT NOT NULL,
    call_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
);
INSERT OR IGNORE INTO orders (id, status, detail) VALUES
    ('1001', 'shipped', 'it left our warehouse yesterday and arrives tomorrow'),
    ('1002', 'processing', 'it is being packed and ships today'),
    ('1003', 'delivered', 'it was delivered on Monday');
"""


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=5.0)
    connection.row_factory = sqlite3.Row
    connection.executescript(SCHEMA)
    return connection


def run_sync(data_dir: Path, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work(connection)`` in one transaction (committed if it returns, rolled back if it raises)."""
    connection = _open(db_path(data_dir))
    try:
        with connection:
            return work(connection)
    finally:
        connection.close()


async def run(ctx: ToolContext, work: Callable[[sqlite3.Connection], T]) -> T:
    """:func:`run_sync` on ``ctx.data_dir``, in a worker thread."""
    return await ctx.run_blocking(lambda: run_sync(ctx.data_dir, work))
