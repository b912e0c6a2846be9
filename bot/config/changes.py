"""`changes:` — where changes come from (Heroku releases, Kubernetes rollouts) and how they are watched.

Deploys recorded through `POST /api/v1/deploys` are changes without any configuration; sources
add the releases and rollouts nobody announced. Which services a change affects comes from
`services` (a change named `api` affects `[api]` unless mapped). Rules spanning sections (known
services, environments, the rollback step) live in `crossfield`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, field_validator, model_validator

from bot.config.durations import Duration
from bot.config.fields import EnvironmentName, NonEmptyStr, Slug, StrictModel, exactly_one_problem
from bot.config.problems import custom_error

__all__ = ["SOURCE_KINDS", "ChangeSource", "ChangesConfig", "HerokuSource", "KubernetesSource", "RollbackStepRef"]

SOURCE_KINDS = ("heroku", "kubernetes")


class HerokuSource(StrictModel):
    """Poll a Heroku app's releases (needs HEROKU_API_TOKEN with read access)."""

    app: NonEmptyStr = Field(description="Heroku app name, e.g. acme-prod.")


class KubernetesSource(StrictModel):
    """Notice a new rollout of a Deployment (its `deployment.kubernetes.io/revision`)."""

    namespace: NonEmptyStr = Field(description="Kubernetes namespace.")
    deployment: NonEmptyStr = Field(description="Deployment name.")
    context: str | None = Field(default=None, description="kubeconfig context to use; default: the current one.")


class ChangeSource(StrictModel):
    """One place changes are discovered: exactly one of `heroku` or `kubernetes`."""

    heroku: HerokuSource | None = Field(default=None, description="A Heroku app's releases.")
    kubernetes: KubernetesSource | None = Field(default=None, description="A Kubernetes Deployment's rollouts.")
    service: Slug | None = Field(
        default=None,
        description="What the change is named after (and, through changes.services, which "
        "services it affects); default: the app or Deployment name.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        problem = exactly_one_problem(self.model_dump(), SOURCE_KINDS, "change source")
        if problem:
            raise custom_error(*problem)
        return self

    @property
    def kind(self) -> str:
        return "heroku" if self.heroku is not None else "kubernetes"

    @property
    def name(self) -> str:
        """The change's service name: `service`, else the app or Deployment name."""
        if self.service:
            return self.service
        if self.heroku is not None:
            return self.heroku.app
        assert self.kubernetes is not None
        return self.kubernetes.deployment

    @property
    def target(self) -> str:
        """Where it polls, for keys and logs: `acme-prod`, `prod/api`."""
        if self.heroku is not None:
            return self.heroku.app
        assert self.kubernetes is not None
        return f"{self.kubernetes.namespace}/{self.kubernetes.deployment}"


class RollbackStepRef(StrictModel):
    """The playbook step [Roll back] runs: it must be marked `rollback: true`."""

    playbook: Slug = Field(description="Playbook name.")
    step: NonEmptyStr = Field(description="Step id in that playbook.")


class ChangesConfig(StrictModel):
    """Changes (deploys, releases, rollouts) and the watch after each of them."""

    sources: dict[EnvironmentName, list[ChangeSource]] = Field(
        default_factory=dict, description="Per environment, where to discover changes by polling."
    )
    services: dict[Slug, list[Slug]] = Field(
        default_factory=dict, description="A change named X affects these services (default: X alone)."
    )
    poll_every: Duration = Field(default=timedelta(seconds=30), description="How often sources are polled.")
    lookback: Duration = Field(default=timedelta(hours=6), description='How far back "is it the deploy?" lists look.')
    watch_for: Duration = Field(default=timedelta(minutes=15), description="How long each change is watched.")
    watch_every: Duration = Field(default=timedelta(seconds=15), description="How often a watch probes.")
    watch_threshold: int = Field(
        default=2, ge=1, le=20, description="Consecutive bad rounds (that were not bad before) before the alarm."
    )
    rollback: RollbackStepRef | None = Field(
        default=None, description="The step [Roll back] runs; default: the first step marked rollback: true."
    )
    auto_rollback: bool = Field(
        default=False, description="Roll back by itself after a countdown with a Cancel button."
    )
    auto_rollback_after: Duration = Field(
        default=timedelta(seconds=60), description="The countdown before an automatic rollback."
    )

    @field_validator("watch_every", "poll_every")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(minutes=5):
            raise custom_error("must be between 1s and 5m", "e.g. 15s")
        return value

    @field_validator("watch_for")
    @classmethod
    def _watch_for(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(hours=6):
            raise custom_error("must be between 1m and 6h", "e.g. 15m")
        return value

    @field_validator("auto_rollback_after")
    @classmethod
    def _countdown(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=10) <= value <= timedelta(minutes=30):
            raise custom_error("must be between 10s and 30m", "long enough for someone to press Cancel; e.g. 60s")
        return value

    @model_validator(mode="after")
    def _rounds(self) -> Self:
        if self.watch_every * self.watch_threshold >= self.watch_for:
            raise custom_error(
                "watch_threshold times watch_every must be shorter than watch_for",
                "the watch would end before it could raise the alarm; lower one or raise watch_for",
            )
        return self

    def affected(self, service: str) -> list[str]:
        """The services a change named `service` affects."""
        return list(self.services.get(service, [service]))
