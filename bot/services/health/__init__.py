""" "Are we down?": health rounds, the watch that announces state changes, and what surrounds them.

Shaped like `bot.services.incidents`:

- `models`: the domain types (a round, the report, a state change) and the refusal (`UnknownService`);
- `service`: `HealthService`, shared rounds of checks with the freeze, deploys, incidents, rollback
  check and recent changes around them; the incident playbook and the rollback check probe through it;
- `watch`: `HealthWatch`, a watched service's state change claimed once across replicas, audited and
  announced through the outbox.
"""

from bot.services.health.models import HealthReport, HealthRound, StateChange, UnknownService
from bot.services.health.service import HealthService, ServiceChecker
from bot.services.health.watch import HealthWatch

__all__ = [
    "HealthReport",
    "HealthRound",
    "HealthService",
    "HealthWatch",
    "ServiceChecker",
    "StateChange",
    "UnknownService",
]
