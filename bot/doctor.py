"""`guardrail doctor`: check what a running guardrail depends on, and say what to fix.

Slack (the token, its scopes against slack-manifest.yml, membership of the configured channels),
the database (reachable, migrated) and every configured service (the health checks themselves —
Redis and RQ included when services use them). Read-only: it changes nothing anywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.checks.base import Status
from bot.checks.runner import CheckRunner
from bot.clock import SystemClock
from bot.config import LoadedConfig
from bot.db import migrate as migrations
from bot.db.urls import redacted
from bot.resilience import Breakers
from bot.settings import Settings

SLACK_TIMEOUT = 10  # seconds per Slack call
MANIFEST = "slack-manifest.yml"


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    detail: str
    fix: str | None = None

    def lines(self) -> list[str]:
        head = f"{'✓' if self.ok else '✗'} {self.what}: {self.detail}"
        return [head, f"    fix: {self.fix}"] if self.fix and not self.ok else [head]


def manifest_scopes(path: Path | None) -> set[str] | None:
    """The bot scopes slack-manifest.yml asks for; None when there is no manifest to compare with."""
    candidates = [path] if path is not None else [Path(MANIFEST), Path(__file__).parent.parent / MANIFEST]
    for candidate in candidates:
        if candidate.is_file():
            data: Any = yaml.safe_load(candidate.read_text())
            return set(((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])
    return None


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name:
            return str(value)
    return None


async def check_slack(settings: Settings, loaded: LoadedConfig, manifest: Path | None) -> list[Finding]:
    problems = settings.slack_problems()
    if problems:
        return [Finding(False, "Slack settings", "; ".join(problems), "set them in the environment or .env")]
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT,
        retry_handlers=[],
    )
    try:
        me = await asyncio.wait_for(client.auth_test(), SLACK_TIMEOUT)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else str(exc)
        return [
            Finding(
                False,
                "Slack token",
                f"auth.test answered `{error}`",
                "paste the app's current Bot User OAuth Token into SLACK_BOT_TOKEN",
            )
        ]
    except Exception as exc:
        return [
            Finding(
                False,
                "Slack token",
                f"could not reach {settings.slack_api_url} ({type(exc).__name__})",
                "check SLACK_API_URL and outbound network access",
            )
        ]
    findings = [Finding(True, "Slack token", f"bot {me.get('user_id')} in team {me.get('team_id')}")]
    findings.append(_scopes(_header(me.headers, "x-oauth-scopes"), manifest_scopes(manifest)))
    channels = {
        "channels.deploys": loaded.config.channels.deploys,
        "channels.alerts": loaded.config.channels.alerts,
        "audit.anchor_channel": loaded.config.audit.anchor_channel,
    }
    for name, channel in channels.items():
        if channel:
            findings.append(await _membership(client, name, channel))
    return findings


def _scopes(granted: str | None, required: set[str] | None) -> Finding:
    if required is None:
        return Finding(True, "Slack scopes", f"not compared: no {MANIFEST} here (run doctor from the checkout)")
    if granted is None:
        return Finding(
            False,
            "Slack scopes",
            "Slack did not say which scopes the token has",
            f"compare the app's OAuth scopes with {MANIFEST} by hand",
        )
    missing = sorted(required - {s.strip() for s in granted.split(",") if s.strip()})
    if missing:
        return Finding(
            False,
            "Slack scopes",
            f"missing {', '.join(missing)}",
            f"add them under OAuth & Permissions (or update the app from {MANIFEST}) and reinstall",
        )
    return Finding(True, "Slack scopes", f"all {len(required)} scopes of {MANIFEST}")


async def _membership(client: AsyncWebClient, name: str, channel: str) -> Finding:
    what = f"Slack channel {name}"
    try:
        answer = await asyncio.wait_for(client.conversations_info(channel=channel), SLACK_TIMEOUT)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else str(exc)
        return Finding(
            False,
            what,
            f"{channel}: conversations.info answered `{error}`",
            "check the channel id in the configuration; for a private channel, invite the bot first",
        )
    except Exception as exc:
        return Finding(False, what, f"{channel}: no answer ({type(exc).__name__})")
    info = answer.get("channel") or {}
    if not info.get("is_member"):
        return Finding(
            False,
            what,
            f"the bot is not a member of #{info.get('name', channel)} ({channel})",
            f"in Slack: /invite @guardrail in #{info.get('name', channel)}",
        )
    return Finding(True, what, f"member of #{info.get('name', channel)}")


def check_database(settings: Settings) -> Finding:
    where = redacted(settings.database_url)
    try:
        missing = migrations.pending(settings.database_url, connect_timeout=settings.database_connect_timeout)
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return Finding(
            False,
            "database",
            f"cannot reach {where}: {type(exc).__name__}: {first}",
            "check DATABASE_URL and that the database is running",
        )
    if missing:
        which = ", ".join(sorted(missing)) if len(missing) <= 3 else f"{len(missing)} migrations"
        return Finding(False, "database", f"{where} is not migrated (missing {which})", "run `guardrail migrate`")
    return Finding(True, "database", f"{where} reachable, schema current")


async def check_services(loaded: LoadedConfig) -> list[Finding]:
    config = loaded.config
    runner = CheckRunner(breakers=Breakers(), clock=SystemClock(), tz=config.tz)
    try:
        results = await asyncio.gather(*(runner.check(s) for s in config.services))
    finally:
        await runner.aclose()
    return [
        Finding(
            r.status is not Status.DOWN,
            f"service {r.service}",
            f"{r.status}: {r.reason}",
            "check the service, or its check in the configuration" if r.status is Status.DOWN else None,
        )
        for r in results
    ]


async def diagnose(settings: Settings, loaded: LoadedConfig, *, manifest: Path | None = None) -> list[Finding]:
    slack, services = await asyncio.gather(check_slack(settings, loaded, manifest), check_services(loaded))
    database = await asyncio.to_thread(check_database, settings)
    return [*slack, database, *services]


def report(findings: list[Finding]) -> tuple[str, int]:
    """The checklist and the exit code (0 all good, 1 something to fix)."""
    lines = [line for finding in findings for line in finding.lines()]
    problems = sum(not f.ok for f in findings)
    lines.append("all good" if not problems else f"{problems} problem{'s' if problems != 1 else ''} to fix")
    return "\n".join(lines), 1 if problems else 0
