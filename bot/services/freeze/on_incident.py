"""`freeze.on_incident`: the incident feature freezes deploys through the freeze service.

An incident's freeze is an ordinary freeze window — announced, audited, enforced by the gate —
that starts when the incident is declared and lasts the longest a freeze may (`freeze.max_duration`),
unless the incident's resolve lifts it first.
"""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock
from bot.services.freeze.models import FreezeRefused, NotFound, without_control
from bot.services.freeze.service import FreezeService
from bot.services.ports import ActiveFreeze


class FreezeForIncidents:
    """Implements `bot.services.ports.IncidentFreezer` over the freeze service."""

    def __init__(self, freezes: FreezeService, clock: Clock, longest: timedelta) -> None:
        self._freezes = freezes
        self._clock = clock
        self._longest = longest

    async def freeze_for_incident(self, *, environment: str, incident_id: int, reason: str, actor: str) -> ActiveFreeze:
        now = self._clock.now()
        # The title is the incident's to validate; a control character in it must not cost the freeze.
        window = await self._freezes.create(
            starts_at=now,
            ends_at=now + self._longest,
            environment=environment,
            reason=without_control(reason),
            actor=actor,
        )
        return window.as_active()

    async def lift(self, freeze_id: int, *, actor: str) -> bool:
        try:
            await self._freezes.cancel(freeze_id, actor=actor)
        except (FreezeRefused, NotFound):
            return False
        return True
