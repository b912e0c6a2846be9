"""The one seam between deploy recording and changes: a deploy recorded through the API becomes a
change (and starts its watch) right away. Deploy recording lives with the freeze feature today; after
it moves, re-point `deploy_recorded` and `bot/db/changes.deploys_since` (the sweep that catches any
deploy this missed, e.g. when the process died between the two) at its new home.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.services.changes.service import ChangeService
from bot.services.ports import DeployInfo

log = logging.getLogger(__name__)


class RecordedDeployLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def info(self) -> DeployInfo: ...

    @property
    def exemptions(self) -> tuple[object, ...]: ...


async def deploy_recorded(changes: ChangeService, deploy: RecordedDeployLike) -> None:
    """Record the deploy as a change; never raises (CI's answer does not depend on it, and the
    deploys sweep records it on the next poll if this fails)."""
    info = deploy.info
    try:
        await changes.deploy_recorded(
            deploy_id=deploy.id,
            environment=info.environment,
            service=info.service,
            version=info.version,
            actor=info.actor,
            at=info.at,
            exemption=bool(deploy.exemptions),
        )
    except Exception as exc:
        log.warning(
            "recording deploy %s as a change failed (%s); the next poll records it", deploy.id, type(exc).__name__
        )
