"""One load shared by every asker, each waiting with its own deadline — no lock held across it.

A snapshot reloaded from the database (the freeze gate, the freeze listing) must not make askers
queue behind each other: with a lock, N askers during a database outage wait N times the bound. Here
askers join the one loading task and each waits on it for at most `timeout` after that load began
(the wait never cancels the load). A load still running `timeout` after it began is given up on,
so the next asker starts a fresh one; `forget()` (after a local write) does the same at once, since
a load begun before the write may miss it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedLoad(Generic[T]):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._task: asyncio.Task[T] | None = None
        self._since = 0.0  # event-loop time the current load began

    def forget(self) -> None:
        """Let no later asker join the load in progress (it may have begun before a write)."""
        self._task = None

    def is_current(self) -> bool:
        """Inside a load: whether it is still the one askers join (not forgotten, not replaced)."""
        return self._task is not None and asyncio.current_task() is self._task

    async def get(self, start: Callable[[], Awaitable[T]]) -> T:
        """The result of the load in progress, or of one begun now with `start()`.

        `TimeoutError` when it is not done `timeout` after it began; the load's own exception when it failed.
        """
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or loop.time() - self._since >= self.timeout:
            task = self._task = loop.create_task(_awaited(start))
            task.add_done_callback(_retrieve)
            self._since = loop.time()
        remaining = self._since + self.timeout - loop.time()
        done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.0))
        if not done or task.cancelled():
            raise TimeoutError(f"no answer within {self.timeout:g}s")
        return task.result()


async def _awaited(start: Callable[[], Awaitable[T]]) -> T:
    return await start()


def _retrieve(task: asyncio.Task[T]) -> None:
    """Mark a failed load's exception as seen, even when every asker had given up on it."""
    if not task.cancelled():
        task.exception()
