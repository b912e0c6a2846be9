"""Where changes are discovered by polling: Heroku releases, Kubernetes rollouts.

Each source answers `newest()` — the most recent changes, newest first — through the same
bounded outbound calls as the actions (`bot.resilience`: timeouts, jittered retries for reads,
a breaker per provider host), and never changes anything.
"""

from __future__ import annotations

from typing import Protocol

from bot.services.changes.models import Discovered


class ChangeFeed(Protocol):
    async def newest(self) -> list[Discovered]:
        """The newest changes at the source, newest first; raises when the source cannot be read."""
        ...
