"""Who is a responder: `access.responders` (user ids, and user groups resolved and cached briefly).

One answer for every feature: who may run playbook steps, approve break-glass exemptions, and
who is invited to an incident channel."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.clock import Clock
from bot.config.models import Principal

log = logging.getLogger(__name__)

GROUP_CACHE_TTL = timedelta(minutes=2)


class GroupDirectory(Protocol):
    async def group_members(self, group_id: str) -> list[str]:
        """The user ids in a user group (S…). Raises (ideally `GroupUnreadable`) when it cannot be read."""
        ...


class GroupUnreadable(Exception):
    """A user group's members could not be read; the message says why in a few words."""


@dataclass(frozen=True)
class Membership:
    """Whether a user is a responder, and which groups could not be read to find out."""

    allowed: bool
    # (group id, why) — read failed, nothing cached. A refusal then says so (see
    # `bot.slack.access_view.not_a_responder`): a member must not be told they are not one.
    unreadable: tuple[tuple[str, str], ...] = ()


class Responders:
    """Answers "may this user press?" and "whom to invite?" from the configured principals."""

    def __init__(
        self,
        principals: Sequence[Principal],
        clock: Clock,
        *,
        ttl: timedelta = GROUP_CACHE_TTL,
        directory: GroupDirectory | None = None,
    ) -> None:
        self._principals = list(principals)
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[datetime, frozenset[str]]] = {}
        self.directory = directory

    async def _members(self, group_id: str) -> frozenset[str] | str:
        """The group's members, or why they could not be read (and nothing is cached)."""
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
            reason = str(exc) if isinstance(exc, GroupUnreadable) else type(exc).__name__
            log.warning("cannot resolve responder group %s: %s", group_id, reason)
            return cached[1] if cached is not None else reason
        self._cache[group_id] = (now, members)
        return members

    async def membership(self, user_id: str) -> Membership:
        """Whether the user is a responder, directly or through a user group, and which groups
        could not be read (they grant nobody)."""
        if any(not p.is_group and p.id == user_id for p in self._principals):
            return Membership(True)
        unreadable: list[tuple[str, str]] = []
        for principal in self._principals:
            if principal.is_group:
                members = await self._members(principal.id)
                if isinstance(members, str):
                    unreadable.append((principal.id, members))
                elif user_id in members:
                    return Membership(True)
        return Membership(False, tuple(unreadable))

    async def allows(self, user_id: str) -> bool:
        """Whether the user is a responder, directly or through a user group."""
        return (await self.membership(user_id)).allowed

    async def user_ids(self) -> list[str]:
        """Every responder as a user id (groups expanded), in configuration order."""
        users: dict[str, None] = {}
        for principal in self._principals:
            if principal.is_group:
                members = await self._members(principal.id)
                users.update(dict.fromkeys(sorted(members) if not isinstance(members, str) else []))
            else:
                users[principal.id] = None
        return list(users)
