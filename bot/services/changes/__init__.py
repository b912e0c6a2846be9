"""Changes (deploys, Heroku releases, Kubernetes rollouts), the watch after each, and "is it the deploy?"."""

from bot.services.changes.models import (
    Change,
    ChangeKind,
    ChangeProblem,
    CountdownCancelled,
    Discovered,
    Dismissed,
    RecentChange,
    RollbackRefused,
    RollbackStarted,
    WatchEvents,
    WatchRound,
    WatchStarted,
    WatchStatus,
    WatchVerdict,
    mark_related,
)
from bot.services.changes.service import ChangeService

__all__ = [
    "Change",
    "ChangeKind",
    "ChangeProblem",
    "ChangeService",
    "CountdownCancelled",
    "Discovered",
    "Dismissed",
    "RecentChange",
    "RollbackRefused",
    "RollbackStarted",
    "WatchEvents",
    "WatchRound",
    "WatchStarted",
    "WatchStatus",
    "WatchVerdict",
    "mark_related",
]
