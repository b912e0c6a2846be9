"""Playbook models: the buttons responders press during an incident, and what each one does.

A playbook is an ordered list of steps; each step runs exactly one action
(an HTTP call, health checks, a Heroku or Kubernetes operation, or replaying
failed RQ jobs). Rules that need the whole config (unknown step in `after`,
unknown service in `checks`, cycles) live in `crossfield`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from bot.config.durations import Duration
from bot.config.fields import HttpUrl, NonEmptyStr, RedisUrl, Slug, StrictModel, exactly_one_problem
from bot.config.problems import custom_error

__all__ = [
    "ACTION_KINDS",
    "Action",
    "HerokuAction",
    "HerokuRollback",
    "HerokuScale",
    "HttpAction",
    "KubernetesAction",
    "KubernetesRollback",
    "KubernetesScale",
    "Playbook",
    "RetryPolicy",
    "RqReplayAction",
    "Step",
]

ACTION_KINDS = ("http", "checks", "heroku", "kubernetes", "rq_replay")
HEROKU_KINDS = ("rollback", "scale")
KUBERNETES_KINDS = ("rollback", "scale")
ROLLBACK_KINDS = ("http", "heroku", "kubernetes")  # what a step marked `rollback: true` may do


def _require_exactly_one(model: StrictModel, choices: tuple[str, ...], what: str) -> None:
    problem = exactly_one_problem({k: getattr(model, k) for k in choices}, choices, what)
    if problem:
        raise custom_error(*problem)


class RetryPolicy(StrictModel):
    """Retry an HTTP action on failure. Only set this when repeating the call is harmless."""

    attempts: int = Field(ge=1, le=10, description="Total number of tries, including the first (1-10).")
    backoff: Duration = Field(default=timedelta(seconds=1), description="Wait between tries, e.g. 1s.")


class HttpAction(StrictModel):
    """Call an HTTP endpoint, e.g. a deploy hook's rollback URL."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="HTTP method (GET, POST, PUT, PATCH or DELETE)."
    )
    url: HttpUrl = Field(description="The URL to call; may use ${VAR} placeholders.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    json_body: Any = Field(default=None, alias="json", description="JSON body to send, if any.")
    timeout: Duration = Field(default=timedelta(seconds=10), description="Give up after this long.")
    retry: RetryPolicy | None = Field(
        default=None, description="Retry on failure; only set when the call is idempotent."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class HerokuRollback(StrictModel):
    """Roll a Heroku app back to its previous release."""

    app: NonEmptyStr = Field(description="Heroku app name.")


class HerokuScale(StrictModel):
    """Scale a Heroku process type (quantity 0 stops it)."""

    app: NonEmptyStr = Field(description="Heroku app name.")
    process: NonEmptyStr = Field(description="Process type, e.g. web or worker.")
    quantity: int = Field(ge=0, description="Number of dynos; 0 stops the process type.")


class HerokuAction(StrictModel):
    """A Heroku operation: exactly one of `rollback` or `scale`."""

    rollback: HerokuRollback | None = Field(default=None, description="Roll back to the previous release.")
    scale: HerokuScale | None = Field(default=None, description="Change the dyno count of a process type.")

    @model_validator(mode="after")
    def _one_operation(self) -> Self:
        _require_exactly_one(self, HEROKU_KINDS, "heroku action")
        return self


class KubernetesRollback(StrictModel):
    """Roll a Deployment back to its previous revision."""

    namespace: NonEmptyStr = Field(description="Kubernetes namespace.")
    deployment: NonEmptyStr = Field(description="Deployment name.")


class KubernetesScale(StrictModel):
    """Set a Deployment's replica count (0 stops it)."""

    namespace: NonEmptyStr = Field(description="Kubernetes namespace.")
    deployment: NonEmptyStr = Field(description="Deployment name.")
    replicas: int = Field(ge=0, description="Desired replicas; 0 stops the deployment.")


class KubernetesAction(StrictModel):
    """A Kubernetes operation: exactly one of `rollback` or `scale`."""

    rollback: KubernetesRollback | None = Field(default=None, description="Undo the last rollout.")
    scale: KubernetesScale | None = Field(default=None, description="Change the replica count.")
    context: str | None = Field(default=None, description="kubeconfig context to use; default: the current one.")

    @model_validator(mode="after")
    def _one_operation(self) -> Self:
        _require_exactly_one(self, KUBERNETES_KINDS, "kubernetes action")
        return self


class RqReplayAction(StrictModel):
    """Requeue failed RQ jobs at a bounded rate, so a replay does not cause the next incident."""

    redis_url: RedisUrl = Field(description="Redis URL of the RQ queues.")
    queue: NonEmptyStr = Field(default="default", description="Queue whose failed jobs are replayed.")
    per_second: float = Field(default=10, gt=0, description="Maximum jobs requeued per second.")
    batch_size: int = Field(default=50, ge=1, description="Jobs requeued per batch.")
    max_queued: int | None = Field(
        default=None, ge=1, description="Stop early when the queue grows past this many jobs."
    )


class Action(StrictModel):
    """What a step does: exactly one of http, checks, heroku, kubernetes or rq_replay."""

    http: HttpAction | None = Field(default=None, description="Call an HTTP endpoint.")
    checks: list[Slug] | None = Field(
        default=None, min_length=1, description="Run these services' health checks and report the result."
    )
    heroku: HerokuAction | None = Field(default=None, description="Roll back or scale a Heroku app.")
    kubernetes: KubernetesAction | None = Field(default=None, description="Roll back or scale a Deployment.")
    rq_replay: RqReplayAction | None = Field(default=None, description="Replay failed RQ jobs.")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        _require_exactly_one(self, ACTION_KINDS, "action")
        return self

    @property
    def kind(self) -> str:
        """Which action this is: "http", "checks", "heroku", "kubernetes" or "rq_replay"."""
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)


class Step(StrictModel):
    """One button in a playbook."""

    id: Slug = Field(description="Unique within the playbook; used by `after` and in audit logs.")
    label: str = Field(min_length=1, max_length=75, description="Button text (Slack allows 75 characters).")
    changes_production: bool = Field(
        default=False, description="Ask for confirmation and announce it, because it changes production."
    )
    rollback: bool = Field(
        default=False,
        description="This step rolls production back; `guardrail rollback-check` and the daily check prove it can run.",
    )
    after: list[Slug] = Field(
        default_factory=list, description="Ids of steps in this playbook that must have run first."
    )
    action: Action = Field(description="What pressing the button does.")
    undo: Action | None = Field(default=None, description="How to reverse the action, offered after it ran.")
    description: str | None = Field(default=None, description="Longer explanation shown next to the button.")

    @model_validator(mode="after")
    def _rollback_changes_something(self) -> Self:
        if self.rollback and self.action.kind not in ROLLBACK_KINDS:
            raise custom_error(
                f"a {self.action.kind} step cannot be a rollback",
                "mark rollback: true on a heroku or kubernetes rollback or an http deploy-hook step",
            )
        if self.rollback and not self.changes_production:
            raise custom_error("a rollback changes production", "add changes_production: true to this step")
        return self


class Playbook(StrictModel):
    """A named, ordered list of steps for one kind of incident."""

    name: Slug = Field(description="Playbook name, e.g. production-incident.")
    steps: list[Step] = Field(min_length=1, description="The steps, in the order they are shown.")

    def step(self, step_id: str) -> Step | None:
        """The step with this id, or None."""
        return next((s for s in self.steps if s.id == step_id), None)
