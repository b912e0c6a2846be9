"""A separate process that appends audit entries: `python -m tests.support.audit_writer URL N NAME`."""

from __future__ import annotations

import asyncio
import sys

from bot.clock import SystemClock
from bot.db.engine import Database
from bot.services.audit import AuditLog


async def main(url: str, count: int, name: str) -> None:
    db = Database(url)
    log = AuditLog(db, SystemClock())
    try:
        for i in range(count):
            await log.record(actor="system", action="test.append", subject=f"{name}-{i}", details={"i": i})
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
