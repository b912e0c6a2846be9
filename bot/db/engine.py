"""Async engine and units of work.

SQLite note: a transaction that reads and later writes can fail with "database is locked" when
another process wrote in between. Units of work therefore start with `BEGIN IMMEDIATE` on
SQLite, which takes the write lock up front and lets `busy_timeout` queue writers instead.
Read-only sessions keep SQLite's default deferred transactions so readers never queue.

Every wait on the database is bounded (`DatabaseBounds`), because guardrail is needed most when the
database is failing. PostgreSQL: a connect timeout, a server-side `statement_timeout`, a bounded
wait for a pooled connection, and a client-side bound on every unit of work and read — the only
defence against a connection the server never answers (a failover without resets, a black-holed
network): no server-side timeout can fire for a query that never reached the server. When that
bound expires the pool is thrown away at once, so the next caller connects afresh instead of
picking the next silent connection; the cut session itself may take psycopg's cancellation
cleanup (≤ 10 s, in the background of whoever gave up waiting) to let go of its connection. The
old pool's idle connections are closed then (closing never waits on the network), and the
connections still out at the reset are closed when they come back and `dispose()` runs, so none
is left for the garbage collector.
SQLite is a local file: `busy_timeout` bounds its only wait, the write lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import Pool
from sqlalchemy.util import greenlet_spawn

from bot.db.audit import AUDIT_KEY, AuditKey
from bot.db.urls import async_url
from bot.resilience import DatabaseTimeout

_READ_ONLY = "guardrail_read_only"

log = logging.getLogger(__name__)


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or did not answer — trouble a later
    attempt may not have (a restart, a failover, a cut network, a full pool) — rather than a
    statement the database refused (a constraint, bad data), which fails again the same way."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, exc.OperationalError | exc.InterfaceError)
    return isinstance(error, DatabaseTimeout | TimeoutError | OSError | exc.TimeoutError)


@dataclass(frozen=True)
class DatabaseBounds:
    """How long any wait on the database may last, in seconds (see the module docstring)."""

    connect: float = 5.0  # PostgreSQL connect_timeout (libpq rounds to whole seconds, at least 2)
    statement: float = 10.0  # PostgreSQL statement_timeout, enforced by the server
    operation: float = 15.0  # client side: a whole unit of work or read, connecting and pre-ping included
    pool: float = 5.0  # waiting for a free pooled connection
    busy: float = 10.0  # SQLite busy_timeout: waiting for the write lock


class Database:
    """One connection pool, and the two ways to use it: `unit_of_work()` and `reader()`."""

    def __init__(self, url: str, bounds: DatabaseBounds | None = None, *, audit_key: AuditKey | None = None) -> None:
        self.url = url
        self.audit_key = audit_key  # every unit of work signs its audit entries with it
        self.bounds = bounds = bounds or DatabaseBounds()
        target = async_url(url)
        self.is_sqlite = target.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": bounds.busy}
        else:
            options = " ".join(
                filter(
                    None,
                    [
                        str(target.query.get("options", "")),
                        f"-c statement_timeout={max(1, round(bounds.statement * 1000))}",
                    ],
                )
            )
            # Pre-ping: a connection reset by a restart is replaced without the caller noticing;
            # one that never answers is cut by the `operation` bound around it.
            kwargs.update(
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
                pool_timeout=bounds.pool,
                connect_args={"connect_timeout": max(2, round(bounds.connect)), "options": options},
            )
        self.engine: AsyncEngine = create_async_engine(target, **kwargs)
        if self.is_sqlite:
            _sqlite_immediate_transactions(self.engine, busy_ms=max(0, round(bounds.busy * 1000)))
        self._read_engine = self.engine.execution_options(**{_READ_ONLY: True})
        # Pools thrown away by a reset: connections that were checked out then return to them later.
        self._retired: list[Pool] = []

    @asynccontextmanager
    async def unit_of_work(self, *, bound: float | None = None) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed when the block ends, rolled back on error.

        The whole block is bounded (`bound` seconds, default `bounds.operation`): `DatabaseTimeout` when cut.
        """
        async with self._bounded(bound):
            async with AsyncSession(self.engine, expire_on_commit=False) as session:
                session.info[AUDIT_KEY] = self.audit_key
                async with session.begin():
                    yield session

    @asynccontextmanager
    async def reader(self, *, bound: float | None = None) -> AsyncIterator[AsyncSession]:
        """A session for reads only; it never takes SQLite's write lock. Bounded as `unit_of_work`."""
        async with self._bounded(bound):
            async with AsyncSession(self._read_engine, expire_on_commit=False) as session:
                yield session

    async def ping(self, *, bound: float | None = None) -> None:
        """One `SELECT 1` on a pooled connection (pre-ping included), bounded as `unit_of_work`."""
        async with self._bounded(bound):
            async with self._read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every idle connection, including those returned to a pool a reset threw away."""
        retired, self._retired = self._retired, []
        for pool in retired:
            await greenlet_spawn(pool.dispose)  # closing an async driver's connection awaits
        await self.engine.dispose()

    @asynccontextmanager
    async def _bounded(self, bound: float | None) -> AsyncIterator[None]:
        """Cut the block after `bound` seconds (PostgreSQL; SQLite is bounded by busy_timeout).

        When the bound expires the pool is reset right away — before the cut session has let go
        of its connection — so callers after us get fresh connections, not the next silent one.
        """
        if self.is_sqlite:
            yield
            return
        seconds = self.bounds.operation if bound is None else bound
        loop = asyncio.get_running_loop()
        expired = loop.call_later(seconds, self._reset_pool, seconds)
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError as exc:
            raise DatabaseTimeout(f"the database did not answer within {seconds:g}s") from exc
        finally:
            expired.cancel()

    def _reset_pool(self, seconds: float) -> None:
        # The whole pool, not just the cut connection: the usual reason for no answer is a failover
        # without resets or a partition, and those strand every pooled connection at once — dropping
        # only the cut one would hand the next caller the next silent one, and cost it a full bound.
        # (The cut connection may not even be known: a hang in pre-ping happens before checkout.)
        # A query merely slower than its bound costs reconnecting, lazily, one connection per caller.
        log.warning("database: no answer within %gs; resetting the connection pool", seconds)
        # Disposing closes the idle connections (libpq sends its goodbye without waiting for an
        # answer, so a silent one cannot hold us) and leaves the checked-out ones alone: they go
        # back to the old pool when their sessions end, and `dispose()` closes them there.
        self._retired.append(self.engine.pool)
        task = asyncio.ensure_future(self.engine.dispose())
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("database: resetting the pool failed: %s", task.exception())


def _sqlite_immediate_transactions(engine: AsyncEngine, *, busy_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
