"""Heroku releases as changes: `GET /apps/{app}/releases` (newest first, `Range: version ..; order=desc`).

Heroku writes what a release is into its description: "Deploy 1a2b3c4" (a build), "Promote from
acme-staging" (a pipeline promotion), "Set FOO, BAR config vars" / "Remove FOO config vars" (config
vars), "Rollback to v41". Who made it is the release's `user.email`. Failed and pending releases
are not changes (nothing runs them).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.actions.base import ActionContext
from bot.actions.heroku import release_list
from bot.resilience import CallPolicy
from bot.services.changes.models import ChangeKind, Discovered

# A poll runs every changes.poll_every; it must end well before the next one.
POLL = CallPolicy(timeout=5.0, attempts=2, backoff=0.5, max_backoff=2.0, deadline=10.0)
NEWEST = 10

_CONFIG = re.compile(r"^(Set|Remove|Unset|Update|Add) .*config vars?$", re.IGNORECASE)
_ROLLBACK = re.compile(r"^Rollback to v\d+", re.IGNORECASE)
_DEPLOY = re.compile(r"^(Deploy|Promote)\b", re.IGNORECASE)


def kind_of(description: str) -> ChangeKind:
    """What Heroku's release description says the release is."""
    text = description.strip()
    if _ROLLBACK.match(text):
        return ChangeKind.ROLLBACK
    if _CONFIG.match(text):
        return ChangeKind.CONFIG
    if _DEPLOY.match(text):
        return ChangeKind.DEPLOY
    return ChangeKind.OTHER


def to_discovered(release: dict[str, Any]) -> Discovered | None:
    """One release as a change; None for a release that is not live (failed, pending) or malformed."""
    try:
        version = int(release["version"])
    except (KeyError, TypeError, ValueError):
        return None
    if str(release.get("status", "succeeded")) != "succeeded":
        return None
    description = str(release.get("description") or "")[:300]
    user = release.get("user") if isinstance(release.get("user"), dict) else {}
    actor = str(user.get("email") or "heroku") if isinstance(user, dict) else "heroku"
    at = None
    created = release.get("created_at")
    if isinstance(created, str):
        try:
            at = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            at = None
    return Discovered(
        version=version, label=f"v{version}", kind=kind_of(description), description=description, actor=actor, at=at
    )


class HerokuReleases:
    """`ChangeFeed` over one app's releases."""

    def __init__(self, app: str, ctx: ActionContext, *, policy: CallPolicy = POLL) -> None:
        self.app = app
        self._ctx = ctx
        self._policy = policy

    async def newest(self) -> list[Discovered]:
        releases = await release_list(self._ctx, self.app, newest=NEWEST, reads=self._policy)
        found = [d for d in map(to_discovered, releases) if d is not None]
        return sorted(found, key=lambda d: d.version, reverse=True)
