"""Who is a responder: `access.responders` (user ids, and user groups resolved and cached briefly).

One answer for every feature: who may run playbook steps, approve break-glass exemptions, and
who is invited to an incident channel."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.clock import Clock

log = logging.getLogger(__name__)

GROUP_CACHE_TTL = timedelta(minutes=2)


class GroupDirectory(Protocol):
    async def group_members(self, group_id: str) -> list[str]:
        """The user ids in a user group (S…). Raises when the group cannot be read."""
        ...


class Responders:
    """Answers "may this user press?" and "whom to invite?" from the configured principals."""

    def __init__(self, principals: Sequence[str], clock: Clock, *, ttl: timedelta = GROUP_CACHE_TTL) -> None:
        self._principals = list(principals)
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[datetime, frozenset[str]]] = {}
        self.directory: GroupDirectory | None = None

    async def _members(self, group_id: str) -> frozenset[str]:
        now = self._clock.now()
        cached = self._cache.get(group_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        if self.directory is None:
            return frozenset()
        try:
            members = frozenset(await self.directory.group_members(group_id))
        except Exception as exc:
            # A group we cannot read grants nobody; keep a stale answer rather than none at all.
            log.warning("cannot resolve responder group %s: %s", group_id, exc)
            return cached[1] if cached is not None else frozenset()
        self._cache[group_id] = (now, members)
        return members

    async def allows(self, user_id: str) -> bool:
        """Whether the user is a responder, directly or through a user group."""
        if user_id in self._principals:
            return True
        for principal in self._principals:
            if principal.startswith("S") and user_id in await self._members(principal):
                return True
        return False

    async def user_ids(self) -> list[str]:
        """Every responder as a user id (groups expanded), in configuration order."""
        users: dict[str, None] = {}
        for principal in self._principals:
            if principal.startswith("S"):
                users.update(dict.fromkeys(sorted(await self._members(principal))))
            else:
                users[principal] = None
        return list(users)
