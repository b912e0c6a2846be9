""" "Are we down?": health rounds, the watch that announces state changes, and what surrounds them.

Shaped like `bot.services.incidents`:

- `service`: `HealthService`, shared rounds of checks with the freeze, deploys, incidents, rollback
  check and recent changes around them; the incident playbook and the rollback check probe through it;
- `watch`: `HealthWatch`, a watched service's state change claimed once across replicas, audited and
  announced through the outbox.
"""

from bot.services.health.service import HealthReport, HealthRound, HealthService, ServiceChecker, UnknownService
from bot.services.health.watch import HealthWatch, StateChange

__all__ = [
    "HealthReport",
    "HealthRound",
    "HealthService",
    "HealthWatch",
    "ServiceChecker",
    "StateChange",
    "UnknownService",
]
