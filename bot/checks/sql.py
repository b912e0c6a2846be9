"""`sql`: healthy when the database answers `SELECT 1`.

The URL goes through the same normalisation as guardrail's own database (`postgres://` needs no
driver name). A fresh connection per attempt (NullPool): a health check must prove that a new
client can connect, not that an old pooled connection is still open.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.checks.probe import Unhealthy, short
from bot.config import SqlCheck
from bot.db.urls import async_url, redacted


class SqlProbe:
    def __init__(self, check: SqlCheck, timeout: float) -> None:
        self.check = check
        url = async_url(check.url)
        connect_args: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = max(1, int(timeout + 0.999))
        self._engine: AsyncEngine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
        self._target = redacted(check.url)

    @property
    def target(self) -> str:
        return self._target

    async def __call__(self) -> str:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            first_line = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
            raise Unhealthy(short(first_line)) from None
        except SQLAlchemyError as exc:
            raise Unhealthy(short(f"{type(exc).__name__}: {exc}")) from None
        return "SELECT 1 ok"

    async def aclose(self) -> None:
        await self._engine.dispose()
