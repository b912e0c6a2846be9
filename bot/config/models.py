"""The typed configuration: GuardrailConfig and everything in it except playbooks.

Key names here are a public interface (people write them in playbooks/*.yaml),
so renaming one is a breaking change. All models are frozen and reject unknown
keys. Per-field rules live on the fields; rules spanning several sections run
in `crossfield` (invoked from GuardrailConfig's validator, or by the loader on
the raw data so it can report them alongside per-field problems).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config import crossfield
from bot.config.changes import ChangesConfig
from bot.config.durations import Duration, format_duration
from bot.config.fields import (
    SERVICE_KINDS,
    ChannelId,
    EnvironmentName,
    HttpMethod,
    HttpUrl,
    NonEmptyStr,
    RedisUrl,
    SlackPrincipal,
    Slug,
    SqlUrl,
    StrictModel,
    matching,
    service_kind_problem,
)
from bot.config.playbooks import Playbook, Step
from bot.config.problems import custom_error, format_path

__all__ = [
    "SKIP_CROSS_CHECKS",
    "Access",
    "AuditSettings",
    "ChangesConfig",
    "Channels",
    "ErrorRate",
    "FreezeConfig",
    "GuardrailConfig",
    "HealthSettings",
    "HttpCheck",
    "IncidentSettings",
    "RecurringFreeze",
    "RedisCheck",
    "RqCheck",
    "ServiceConfig",
    "Severity",
    "SqlCheck",
    "TcpCheck",
]

SKIP_CROSS_CHECKS = "guardrail_skip_cross_checks"
"""Validation-context key: the loader runs cross-field checks itself (with file attribution)."""


# A health answer is due within about a second; a check that may take longer than this is not a check.
MAX_CHECK_TIMEOUT = timedelta(seconds=30)


class Severity(StrEnum):
    """Incident severity, most severe first."""

    sev1 = "sev1"
    sev2 = "sev2"
    sev3 = "sev3"


class Channels(StrictModel):
    """Where guardrail posts."""

    deploys: ChannelId = Field(description="Channel id where freezes, deploys and overrides are announced.")
    alerts: ChannelId | None = Field(default=None, description="Channel id for health state changes.")


@dataclass(frozen=True)
class Principal:
    """One entry of `access.responders`, typed when the configuration loads: a user, or a user group
    whose members are looked up (and cached briefly) when someone presses."""

    id: str
    is_group: bool

    @classmethod
    def parse(cls, value: str) -> Principal:
        """A validated `SlackPrincipal`: S… is a user group, U…/W… a user."""
        return cls(value, value.startswith("S"))


class Access(StrictModel):
    """Who may press buttons that change production."""

    responders: list[SlackPrincipal] = Field(
        default_factory=list, description="Slack user ids (U…/W…) or user-group ids (S…)."
    )

    @property
    def principals(self) -> tuple[Principal, ...]:
        """`responders`, typed (parsed once, when the configuration was validated)."""
        return self._principals

    def model_post_init(self, context: Any, /) -> None:
        self._principals = tuple(Principal.parse(value) for value in self.responders)

    _principals: tuple[Principal, ...] = PrivateAttr(default=())


class ErrorRate(StrictModel):
    """Down when an error rate the service reports in its JSON body is above `max`."""

    field: NonEmptyStr = Field(description="Dotted path to a number in the JSON body, e.g. requests.error_rate.")
    max: float = Field(ge=0, description="Down above this value (same unit as the field, e.g. 0.05 or 5).")


class HttpCheck(StrictModel):
    """Healthy when an HTTP request returns the expected status (and body, if asked)."""

    url: HttpUrl = Field(description="http:// or https:// URL to request.")
    method: HttpMethod = Field(default="GET", description="HTTP method.")
    expect_status: int = Field(default=200, ge=100, le=599, description="Status code that means healthy.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    body_contains: str | None = Field(default=None, description="Healthy only if the body contains this text.")
    json_field: str | None = Field(
        default=None, description="Dotted path into the JSON body, e.g. status.db; see json_equals."
    )
    json_equals: str | int | float | bool | None = Field(
        default=None, description="Healthy only if json_field has this value."
    )
    error_rate: ErrorRate | None = Field(
        default=None, description="Down when the JSON body reports an error rate above a limit (a metrics endpoint)."
    )

    @field_validator("json_equals", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise custom_error("must be a single value (text, number, true or false)")
        return value

    @model_validator(mode="after")
    def _json_pair(self) -> Self:
        if self.json_equals is not None and self.json_field is None:
            raise custom_error("json_equals needs json_field", "add json_field: the dotted path to compare")
        return self


class TcpCheck(StrictModel):
    """Healthy when a TCP connection can be opened."""

    host: NonEmptyStr = Field(description="Host name or IP address.")
    port: int = Field(ge=1, le=65535, description="TCP port (1-65535).")


class SqlCheck(StrictModel):
    """Healthy when the database answers a trivial query."""

    url: SqlUrl = Field(description="postgres://, postgresql://, mysql:// or sqlite:/// URL.")


class RedisCheck(StrictModel):
    """Healthy when Redis answers PING."""

    url: RedisUrl = Field(description="redis:// or rediss:// URL.")


class RqCheck(StrictModel):
    """Healthy when an RQ queue is within limits and has enough workers."""

    redis_url: RedisUrl = Field(description="redis:// or rediss:// URL of the RQ queues.")
    queue: NonEmptyStr = Field(default="default", description="Queue name.")
    max_queued: int | None = Field(default=None, ge=0, description="Unhealthy above this many queued jobs.")
    max_failed: int | None = Field(default=None, ge=0, description="Unhealthy above this many failed jobs.")
    min_workers: int = Field(default=0, ge=0, description="Unhealthy with fewer workers than this.")
    workers: int | None = Field(
        default=None,
        ge=1,
        description="How many workers should run; when set, no live worker while jobs "
        "are queued is down. Default for the crash-loop limit: min_workers, at least 1.",
    )
    crash_window: Duration = Field(
        default=timedelta(minutes=5), description="Count workers started within this long (crash loops)."
    )
    max_worker_starts: int | None = Field(
        default=None,
        ge=1,
        description="Down (crash-looping) when more workers than this started within "
        "crash_window; default 3 times the expected workers.",
    )
    storm_window: Duration = Field(
        default=timedelta(minutes=2), description="Failure rate over the rounds within this long (retry storms)."
    )
    max_failed_per_minute: float = Field(
        default=10, gt=0, description="Down (retry storm) when jobs fail faster than this, retries included."
    )

    @field_validator("crash_window", "storm_window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=30) <= value <= timedelta(hours=1):
            raise custom_error("must be between 30s and 1h", "a rate needs a few rounds; e.g. 2m or 5m")
        return value

    @property
    def expected_workers(self) -> int:
        """How many workers should be running: `workers`, else min_workers, at least 1."""
        return self.workers if self.workers is not None else max(self.min_workers, 1)

    @property
    def worker_start_limit(self) -> int:
        """More starts than this within crash_window is a crash loop."""
        if self.max_worker_starts is not None:
            return self.max_worker_starts
        return 3 * self.expected_workers


class ServiceConfig(StrictModel):
    """Something guardrail can health-check: exactly one of http, tcp, sql, redis or rq."""

    name: Slug = Field(
        description='Service name, used by `checks` in playbooks, `/health <name>` and "is <name> down?".'
    )
    http: HttpCheck | None = Field(default=None, description="HTTP check.")
    tcp: TcpCheck | None = Field(default=None, description="TCP connect check.")
    sql: SqlCheck | None = Field(default=None, description="SQL database check.")
    redis: RedisCheck | None = Field(default=None, description="Redis PING check.")
    rq: RqCheck | None = Field(default=None, description="RQ queue check.")
    timeout: Duration = Field(default=timedelta(seconds=2), description="A check slower than this fails.")
    slow_after: Duration | None = Field(
        default=None, description="A check slower than this is reported as slow; must be below timeout."
    )
    watch: bool = Field(default=False, description="Check periodically and announce state changes.")
    watch_interval: Duration = Field(default=timedelta(seconds=30), description="How often to check when watching.")
    watch_threshold: int = Field(
        default=2, ge=1, description="Consecutive results needed before a state change is announced."
    )

    @model_validator(mode="after")
    def _one_check(self) -> Self:
        problem = service_kind_problem({k: getattr(self, k) for k in ("name", *SERVICE_KINDS)})
        if problem:
            raise custom_error(*problem)
        if self.slow_after is not None and self.slow_after >= self.timeout:
            raise custom_error("slow_after must be shorter than timeout", "lower slow_after or raise timeout")
        if self.timeout > MAX_CHECK_TIMEOUT:
            # Every "are we down?" answer waits for the slowest check of its round.
            raise custom_error(
                f"timeout is at most {format_duration(MAX_CHECK_TIMEOUT)}: every answer waits for the slowest check",
                "use a shorter timeout; a health check measures, it does not wait",
            )
        return self

    @property
    def kind(self) -> str:
        """Which check this service uses: "http", "tcp", "sql", "redis" or "rq"."""
        return next(k for k in SERVICE_KINDS if getattr(self, k) is not None)


class HealthSettings(StrictModel):
    """How health results are shared."""

    cache_ttl: Duration = Field(
        default=timedelta(seconds=10),
        description="Reuse a finished round of checks for this long instead of re-checking.",
    )


class RecurringFreeze(StrictModel):
    """A freeze window that repeats on a schedule, e.g. every weekend."""

    name: NonEmptyStr = Field(description="Shown in announcements, e.g. Weekend freeze.")
    cron: NonEmptyStr = Field(description="When it starts: 5-field crontab in the configured timezone.")
    duration: Duration = Field(description="How long each window lasts, e.g. 65h.")
    environments: list[EnvironmentName] | None = Field(
        default=None, min_length=1, description="Frozen environments; default: the default environment."
    )
    reason: str | None = Field(default=None, description="Why, shown in announcements.")


class FreezeConfig(StrictModel):
    """Deploy freezes: environments, reminders and recurring windows."""

    environments: list[EnvironmentName] = Field(
        default_factory=lambda: ["production"],
        min_length=1,
        description="Environments that can be frozen; the first is the default.",
    )
    reminders: list[Duration] = Field(
        default_factory=list,
        description="Announce this long before each window starts (the start and end are always announced).",
    )
    max_duration: Duration = Field(default=timedelta(days=7), description="Longest allowed freeze.")
    recurring: list[RecurringFreeze] = Field(default_factory=list, description="Freezes on a schedule.")
    on_incident: list[Severity] = Field(
        default_factory=list, description="Freeze the default environment while an incident of these is open."
    )

    @field_validator("environments")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        duplicates = sorted({env for env in value if value.count(env) > 1})
        if duplicates:
            raise custom_error(f"environment '{duplicates[0]}' is listed twice", "list each environment once")
        return value

    @property
    def default_environment(self) -> str:
        """The environment a freeze applies to when none is named."""
        return self.environments[0]

    def window_environments(self, window: RecurringFreeze) -> list[str]:
        """The environments a recurring window freezes: its own list, or the default environment."""
        return list(window.environments) if window.environments else [self.default_environment]


ChannelPrefix = Annotated[
    str,
    AfterValidator(
        matching(
            r"[a-z0-9][a-z0-9_-]{0,20}",
            "'{value}' is not a valid channel prefix",
            "use up to 21 lowercase letters, digits, '-' and '_', e.g. inc",
        )
    ),
]


def _quoted_time(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        # YAML reads an unquoted 9:00 as the number 540 (base 60)
        raise custom_error("a time of day must be quoted", 'write it as "09:00" (with the quotes)')
    return value


ClockTime = Annotated[
    str,
    BeforeValidator(_quoted_time),
    AfterValidator(
        matching(
            r"([01][0-9]|2[0-3]):[0-5][0-9]",
            "'{value}' is not a time of day",
            "write it as HH:MM on a 24-hour clock, e.g. 09:00",
        )
    ),
]


class IncidentSettings(StrictModel):
    """Incident handling."""

    verify_freshness: Duration = Field(
        default=timedelta(minutes=15),
        description="A step with `after: [...]` needs those steps to have succeeded this recently.",
    )
    channel_prefix: ChannelPrefix = Field(
        default="inc",
        description="Incident channels are named <prefix>-<date>-<slug>.",
    )
    rollback_check_at: ClockTime | None = Field(
        default="09:00",
        description="Daily, at this time (HH:MM, configured timezone), preview every rollback "
        "and production step and its undo; red results go to the deploys channel. null: never.",
    )


class AuditSettings(StrictModel):
    """Anchors: the audit log's head posted where a database writer cannot change it."""

    anchor_channel: ChannelId | None = Field(
        default=None,
        description="Channel id where the chain's head (entry number and hash) is posted; unset: no anchors.",
    )
    anchor_every: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="Post an anchor once this many entries were written since the last one.",
    )
    anchor_interval: Duration = Field(
        default=timedelta(days=1), description="Post an anchor at least this often while entries are written."
    )

    @field_validator("anchor_interval")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise custom_error("must be at least 1m", "anchors are checked once a minute")
        return value


class GuardrailConfig(StrictModel):
    """The whole configuration, merged from every YAML file in the config directory."""

    timezone: str = Field(default="UTC", description="IANA time zone for times people type and see.")
    channels: Channels = Field(description="Where guardrail posts.")
    access: Access = Field(default_factory=Access, description="Who may press production buttons.")
    services: list[ServiceConfig] = Field(default_factory=list, description="Health-checked services.")
    freeze: FreezeConfig = Field(default_factory=FreezeConfig, description="Deploy freezes.")
    playbooks: list[Playbook] = Field(default_factory=list, description="Incident playbooks.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Health check settings.")
    incidents: IncidentSettings = Field(default_factory=IncidentSettings, description="Incident settings.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="Audit log anchors.")
    changes: ChangesConfig = Field(default_factory=ChangesConfig, description="Changes and the watch after each.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise custom_error(
                f"unknown time zone '{value}'", "use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(SKIP_CROSS_CHECKS):
            return self
        found = crossfield.check(self.model_dump(by_alias=True))
        if found:
            raise custom_error("; ".join(f"{format_path(loc)}: {message}" for loc, message, _ in found))
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def service(self, name: str) -> ServiceConfig | None:
        """The service with this name, or None."""
        return next((s for s in self.services if s.name == name), None)

    def rollback_step(self) -> tuple[Playbook, Step] | None:
        """The step a change watch's [Roll back] runs: `changes.rollback`, else the first step marked
        `rollback: true`; None when there is none (crossfield rejects a `changes.rollback` that is wrong)."""
        ref = self.changes.rollback
        for playbook in self.playbooks:
            for step in playbook.steps:
                if (ref is None and step.rollback) or (
                    ref is not None and ref.playbook == playbook.name and ref.step == step.id
                ):
                    return playbook, step
        return None

    def playbook(self, name: str | None = None) -> Playbook | None:
        """The playbook with this name; the first one when name is None; None if there is none."""
        if name is None:
            return self.playbooks[0] if self.playbooks else None
        return next((p for p in self.playbooks if p.name == name), None)
