"""`freeze.on_incident`: what the incident feature asks of the freeze feature.

When an incident of a listed severity is declared, deploys to the default environment are
frozen for its duration; on resolve, guardrail offers to lift that freeze. The freeze feature
implements this protocol (an adapter over its service); without one, `on_incident` does nothing.
"""

from __future__ import annotations

from typing import Protocol

from bot.services.ports import ActiveFreeze


class IncidentFreezer(Protocol):
    async def freeze_for_incident(self, *, environment: str, incident_id: int, reason: str,
                                  actor: str) -> ActiveFreeze:
        """Start an open-ended freeze of `environment` for the incident (announced and audited there)."""
        ...

    async def lift(self, freeze_id: int, *, actor: str) -> bool:
        """End the freeze now; False when it had already ended or been lifted."""
        ...
