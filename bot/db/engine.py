"""Async engine and units of work.

SQLite note: a transaction that reads and later writes can fail with "database is locked" when
another process wrote in between. Units of work therefore start with `BEGIN IMMEDIATE` on
SQLite, which takes the write lock up front and lets `busy_timeout` queue writers instead.
Read-only sessions keep SQLite's default deferred transactions so readers never queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.audit import AUDIT_KEY, AuditKey
from bot.db.urls import async_url

_READ_ONLY = "guardrail_read_only"


class Database:
    """One connection pool, and the two ways to use it: `unit_of_work()` and `reader()`."""

    def __init__(self, url: str, *, audit_key: AuditKey | None = None) -> None:
        self.url = url
        self.audit_key = audit_key  # every unit of work signs its audit entries with it
        target = async_url(url)
        self.is_sqlite = target.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # connect_timeout: an unreachable database fails fast instead of hanging a request.
            kwargs.update(pool_size=10, max_overflow=10, pool_timeout=10, connect_args={"connect_timeout": 5})
        self.engine: AsyncEngine = create_async_engine(target, **kwargs)
        if self.is_sqlite:
            _sqlite_immediate_transactions(self.engine)
        self._read_engine = self.engine.execution_options(**{_READ_ONLY: True})

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            session.info[AUDIT_KEY] = self.audit_key
            async with session.begin():
                yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; it never takes SQLite's write lock."""
        async with AsyncSession(self._read_engine, expire_on_commit=False) as session:
            yield session

    async def ping(self) -> None:
        async with self._read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_immediate_transactions(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
