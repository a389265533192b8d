"""Call records: every call written to a database when it starts and completed when it ends.

``CallStore`` (SQLAlchemy 2 async: SQLite through aiosqlite by default, PostgreSQL through
asyncpg), its Alembic migrations (``migrations/``, run at start-up), and ``CallRecorder``, the
``CallListener`` that writes the rows. Read by ``GET /calls`` and ``voice-agent calls``.
"""
