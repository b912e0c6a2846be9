"""Which optional features are off in this process, and why — said once at start, in one line.

A newcomer whose API answers 503, or whose audit log is not signed, finds the reason in the first
lines `guardrail serve` prints instead of guessing. Also what `/metrics` counts as config problems.
"""

from __future__ import annotations

from bot.actions.environment import setup_warnings
from bot.runtime import Runtime

API_DISABLED = "GUARDRAIL_API_TOKEN is not set on the guardrail server"


def features_off(runtime: Runtime) -> list[str]:
    """Optional features that are off, each with the reason and what turns it on."""
    settings, config = runtime.settings, runtime.config
    off: list[str] = []
    if not settings.api_enabled:
        off.append(f"HTTP API /api/v1 (freeze gate, deploys): {API_DISABLED}; it answers 503")
    if settings.guardrail_audit_key is None:
        off.append("audit signing: GUARDRAIL_AUDIT_KEY is not set (plain SHA-256 chain)")
    if not runtime.audit.anchoring:
        off.append("audit anchoring: audit.anchor_channel is not set")
    if runtime.health.watch_interval is None:
        off.append("health watch: no service has watch_interval")
    uses_heroku = any(
        a is not None and a.heroku is not None for p in config.playbooks for s in p.steps for a in (s.action, s.undo)
    )
    if settings.heroku_api_token is None and not uses_heroku:
        off.append("heroku actions: HEROKU_API_TOKEN is not set")
    return off


def startup_lines(runtime: Runtime) -> tuple[str, list[str]]:
    """The startup line (transport, then what is off) and the problems that will make actions fail."""
    settings = runtime.settings
    transport = (
        "Slack over Socket Mode (SLACK_APP_TOKEN is set; /slack/events refuses HTTP requests)"
        if settings.socket_mode
        else "Slack over HTTP at /slack/events (SLACK_APP_TOKEN is not set)"
    )
    off = features_off(runtime)
    line = f"features: {transport}; off: {'; '.join(off)}" if off else f"features: {transport}; all on"
    return line, setup_warnings(runtime.config, settings)
