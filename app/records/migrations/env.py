"""Alembic environment of the call records.

Run by ``CallStore.migrate`` (``alembic.command.upgrade`` on the store's own connection, inside
one transaction), never by the ``alembic`` command line: the connection arrives in
``config.attributes["connection"]``. On PostgreSQL a transaction-scoped advisory lock makes
replicas that start together migrate one after the other; the second finds the schema current.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from app.records.models import Base

MIGRATION_LOCK = 0x7C0A11  # any fixed number: the advisory lock's key, shared by every replica


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("the call-record migrations run online only, through app.records.store")
shared = context.config.attributes.get("connection")
if not isinstance(shared, Connection):
    raise RuntimeError("the call-record migrations run through app.records.store (CallStore.migrate)")
run_migrations(shared)
