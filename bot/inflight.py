"""Playbook steps running in this process, so a shutdown can stop taking new ones and wait for these.

On SIGTERM (a deploy, a scale-down) `drain()` refuses new step clicks and waits up to a bound for
the running steps to finish and record their results. A step still running at the bound is left
as it is: the process exits, its lease stops being renewed, and the lease sweep of any replica
(`bot.services.incidents.leases`) shows it as interrupted — never silently lost, never re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class InFlight:
    def __init__(self) -> None:
        self.accepting = True
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def admit(self) -> Iterator[bool]:
        """True (and counted until the block ends) while accepting work; False once draining."""
        if not self.accepting:
            yield False
            return
        self.running += 1
        self._idle.clear()
        try:
            yield True
        finally:
            self.running -= 1
            if self.running == 0:
                self._idle.set()

    async def drain(self, bound: float) -> int:
        """Stop admitting; wait up to `bound` seconds for the running work. Returns how many still run."""
        self.accepting = False
        if self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), bound)
        return self.running
