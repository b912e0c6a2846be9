"""What `/metrics` shows, in Prometheus' text format: one registry per running bot.

Instrumentation stays at the edges — the HTTP middleware (requests and their latency), the health
check runner's observer, the step-click handler, the scheduler's tick wrapper — and state that is
cheap to read (breakers, configuration) is read when Prometheus scrapes. Services never import
this module (tests/test_architecture.py): they stay usable without Prometheus.

For Slack requests over HTTP, the request's duration *is* the acknowledgement latency: Slack
redelivers when it exceeds 3 s. Socket Mode requests are not counted (no HTTP request).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from bot.checks.base import CheckResult
from bot.resilience import Breakers

__all__ = ["Metrics", "request_kind"]

# Slack gives us 3 s; the buckets resolve the range around it.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
HEALTH_STATES = ["up", "slow", "down"]
BREAKER_STATES = ["closed", "open", "half_open"]


def request_kind(path: str, body: bytes, content_type: str) -> str:
    """slash_command / action / view / event / api / other — from the path and, for Slack, the body
    (Slack sends everything to one URL)."""
    if path.startswith("/api/"):
        return "api"
    if path != "/slack/events":
        return "other"
    if "json" in content_type:
        return "event"
    if body.startswith(b"payload=") or b"&payload=" in body:
        if b"view_submission" in body or b"view_closed" in body:
            return "view"
        return "action"  # block_actions, shortcuts, message actions
    return "slash_command" if b"command=" in body else "other"


class Metrics:
    """The bot's metrics; `render()` is what `/metrics` answers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "guardrail_requests", "HTTP requests answered, by kind and status code", ["kind", "status"], registry=r
        )
        self.latency = Histogram(
            "guardrail_request_seconds",
            "Time to answer an HTTP request (for Slack requests: the acknowledgement latency)",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.health = Enum(
            "guardrail_health_status",
            "The last health check result of each service",
            ["service"],
            states=HEALTH_STATES,
            registry=r,
        )
        self.health_checks = Counter(
            "guardrail_health_checks", "Health checks run, by service and result", ["service", "status"], registry=r
        )
        self.steps = Counter(
            "guardrail_step_runs",
            "Playbook step runs finished on this replica, by outcome (succeeded / failed / unrecorded)",
            ["outcome"],
            registry=r,
        )
        self.steps_in_flight = Gauge("guardrail_steps_in_flight", "Playbook steps running on this replica", registry=r)
        self.breakers = Enum(
            "guardrail_breaker_state",
            "Circuit breaker state per outbound target",
            ["target"],
            states=BREAKER_STATES,
            registry=r,
        )
        self.ticks = Counter(
            "guardrail_scheduler_ticks", "Scheduler ticks run, by job and result", ["job", "result"], registry=r
        )
        self.tick_lag = Gauge(
            "guardrail_scheduler_tick_lag_seconds",
            "How late the last tick of each job started, against its schedule",
            ["job"],
            registry=r,
        )
        self.config_loaded = Gauge("guardrail_config_loaded", "1 when a validated configuration is loaded", registry=r)
        self.config_problems = Gauge(
            "guardrail_config_problems",
            "Settings problems that keep a feature from working (see the startup log)",
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "guardrail_outbox_backlog",
            "Announcements due but not yet posted (all replicas; NaN when the database did not answer within 1 s)",
            registry=r,
        )
        self._breakers: Breakers | None = None
        self._request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    # -- edges report here ----------------------------------------------------------------------
    def request_answered(self, kind: str, status: int, seconds: float) -> None:
        # Every HTTP request lands here: keep the labelled children (`labels()` takes a lock and
        # validates the label values each call). Kinds and statuses are few.
        key = (kind, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(kind, str(status)),
                self.latency.labels(kind),
            )
        children[0].inc()
        children[1].observe(seconds)

    def health_result(self, result: CheckResult) -> None:
        status = str(result.status)
        self.health.labels(result.service).state(status)
        self.health_checks.labels(result.service, status).inc()

    def step_finished(self, outcome: str) -> None:
        self.steps.labels(outcome).inc()

    def tick(self, job: str, *, ok: bool) -> None:
        self.ticks.labels(job, "ok" if ok else "failed").inc()

    # -- read when scraped ----------------------------------------------------------------------
    def watch_breakers(self, breakers: Breakers) -> None:
        self._breakers = breakers

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for (its Accept header), and its content type."""
        for breaker in self._breakers.targets() if self._breakers is not None else []:
            state = "closed" if breaker.opened_at is None else "open" if breaker.is_open else "half_open"
            self.breakers.labels(breaker.target).state(state)
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
