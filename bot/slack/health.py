""" "Are we down?" in Slack: questions in channels, `@guardrail status`, `/health [service]`.
(The watcher's announcements in `channels.alerts` are posted by the outbox: bot/slack/outbox.py.)"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Runtime
from bot.services.health import HealthReport, UnknownService
from bot.slack import blocks
from bot.slack.health_view import render_report
from bot.slack.ids import Command, Event
from bot.slack.payloads import SlashCommand
from bot.slack.post_ack import after_ack

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]

USAGE = "Usage: `/health` for every service, `/health <service>` for one."
MENTION_USAGE = (
    "Ask me `status` for every service or `status <service>` for one (or just ask in the channel: are we down?)."
)
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
# What is quoted is not being asked: "> …" lines (Slack sends them as "&gt; …"), code, quotations.
_QUOTED = re.compile(r"^[ \t]*(?:>|&gt;)[^\n]*|```[\s\S]*?```|`[^`]*`|\"[^\"]*\"|\u201c[^\u201d]*\u201d", re.MULTILINE)
# The question starts the message or a sentence, perhaps after a greeting ("hey, are we down?").
_START = r"(?:^|[.!?,;:(]\s*)(?:(?:hey|hi|so|ok|okay|um|uh|wait|folks|team|guys|all)\b[\s,]*)*"
_WHOLE = r"(?:are we|is (?:prod|production|anything|everything|something|the site|the app))"
# "down to two reviewers", "broken down by team", "down time", "dead code": not an outage question.
_NOT_AN_OUTAGE = r"(?![\w-])(?!\s+(?:to|by|time|times|code|down|under|into|with|from)\b)"
_STATUS_WORDS = ("status", "health", "healthcheck")
_FILLER = ("of", "for", "on", "the", "please", "pls", "now")
# Message subtypes that are still a person asking; edits, joins, bot posts etc. are not.
_PEOPLE_SUBTYPES = (None, "thread_broadcast", "file_share")


@dataclass(frozen=True)
class Question:
    """Someone asked whether things are down; about one service when `service` is set."""

    service: str | None = None


def _normalise(text: str) -> str:
    text = _QUOTED.sub(" ", _MENTION.sub(" ", text))
    text = text.lower().replace("\u2019", "'")  # curly apostrophes from phones
    return " ".join(text.split())


def parse_question(text: str, services: Sequence[str]) -> Question | None:
    """A health question in a message ("are we down?", "is checkout failing"), or None.

    Only the question forms trigger: a message that merely contains "down" ("let's sit down and
    plan", "we are down to two reviewers") does not.
    """
    text = _normalise(text)
    if re.search(rf"{_START}{_WHOLE}\s+(?:down|broken){_NOT_AN_OUTAGE}", text):
        return Question()
    if services:
        names = "|".join(re.escape(s) for s in sorted(services, key=len, reverse=True))
        found = re.search(
            rf"{_START}is\s+(?:the\s+)?({names})(?:\s+service)?\s+(?:down|broken|failing|dead)"
            rf"{_NOT_AN_OUTAGE}",
            text,
        )
        if found:
            return Question(found.group(1))
    return None


def parse_mention(text: str, services: Sequence[str]) -> Question | str:
    """`@guardrail status [service]` (or a health question); the usage text for anything else.

    Whether a named service exists is the service's to say (`UnknownService`)."""
    words = [w for w in re.split(r"[\s,:;]+", _normalise(text).rstrip("?!. ")) if w]
    if words and words[0] in _STATUS_WORDS:
        words = [words[0], *(w for w in words[1:] if w not in _FILLER)]
        if len(words) == 1:
            return Question()
        if len(words) == 2:
            return Question(words[1])
        return f"I could not read that. {MENTION_USAGE}"
    return parse_question(text, services) or MENTION_USAGE


def unknown_service_text(names: Sequence[str], services: Sequence[str]) -> str:
    known = ", ".join(f"`{s}`" for s in services) or "none configured"
    asked = " ".join(names)
    return f"I don't know a service called `{blocks.quoted(asked)}`. Services: {known}."


def parse_slash(text: str) -> Question | str:
    """`/health [service]`; whether the service exists is the service's to say (`UnknownService`)."""
    words = text.split()
    if not words:
        return Question()
    if len(words) > 1:
        return f"I could not read `{blocks.quoted(text)}`. {USAGE}"
    return Question(words[0].lower())


def _is_from_a_bot(event: dict[str, Any], bot_user_id: str | None) -> bool:
    return bool(event.get("bot_id")) or (bot_user_id is not None and event.get("user") == bot_user_id)


class HealthHandlers:
    """The health feature's Slack handlers: each parses a question, asks the health service and
    renders the report with `health_view`. `register` wires them to Bolt."""

    def __init__(self, app: AsyncApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.health = runtime.health

    def service_names(self) -> list[str]:
        return [s.name for s in self.runtime.config.services]

    def render(self, report: HealthReport) -> tuple[str, list[blocks.Block]]:
        config = self.runtime.config
        return render_report(report, config.tz, self.runtime.clock.now(), config.health.cache_ttl)

    async def answer(self, question: Question | str) -> tuple[str, list[blocks.Block]]:
        """The reply to a question asked in a channel: the report, or why there is none."""
        if isinstance(question, str):
            return question, [blocks.section(question)]
        try:
            report = await self.health.report(question.service)
        except UnknownService as exc:
            text = unknown_service_text(exc.names, exc.known)
            return text, [blocks.section(text)]
        return self.render(report)

    async def reply_in_thread(self, client: AsyncWebClient, event: dict[str, Any], question: Question | str) -> None:
        thread_ts = event.get("thread_ts") or event.get("ts")
        text, rendered = await self.answer(question)
        await client.chat_postMessage(channel=event["channel"], thread_ts=thread_ts, text=text, blocks=rendered)

    async def on_message(self, event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient) -> None:
        # Events are acknowledged by Bolt before listeners run.
        bot_user_id = context.get("bot_user_id")
        if event.get("subtype") not in _PEOPLE_SUBTYPES or _is_from_a_bot(event, bot_user_id):
            return
        text = str(event.get("text") or "")
        if bot_user_id and f"<@{bot_user_id}" in text:
            return  # Slack also sends this as app_mention; answer it once, there
        question = parse_question(text, self.service_names())
        if question is not None and event.get("channel"):
            await self.reply_in_thread(client, event, question)

    async def on_mention(self, event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient) -> None:
        if _is_from_a_bot(event, context.get("bot_user_id")) or not event.get("channel"):
            return
        if event.get("edited"):
            return  # Slack re-sends a mention when its message is edited; it was answered already
        await self.reply_in_thread(client, event, parse_mention(str(event.get("text") or ""), self.service_names()))

    async def health_command(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        # What needs no check and no database (usage, an unknown service, a fresh shared round) is
        # answered in the acknowledgement itself: one HTTP request, and no work after the ack.
        question = parse_slash(SlashCommand.parse(body).text)
        if isinstance(question, str):
            await ack(text=question, response_type="ephemeral")
            return
        try:
            ready = self.health.report_if_ready(question.service)
            answer = None if ready is None else self.render(ready)
        except UnknownService as exc:
            await ack(text=f"{unknown_service_text(exc.names, exc.known)} {USAGE}", response_type="ephemeral")
            return
        except Exception:
            log.exception("could not answer /health from the last round; answering after the acknowledgement")
            answer = None
        if answer is not None:
            await ack(text=answer[0], blocks=answer[1], response_type="ephemeral")
            return
        await ack()
        try:
            report = await self.health.report(question.service)  # waiting for checks holds no slot
        except UnknownService as exc:
            await respond(text=f"{unknown_service_text(exc.names, exc.known)} {USAGE}", response_type="ephemeral")
            return
        async with after_ack(self.app):
            text, rendered = self.render(report)
            await respond(text=text, blocks=rendered, response_type="ephemeral")


def register(app: AsyncApp, runtime: Runtime) -> None:
    handlers = HealthHandlers(app, runtime)
    app.event(Event.MESSAGE.value)(handlers.on_message)
    app.event(Event.APP_MENTION.value)(handlers.on_mention)
    app.command(Command.HEALTH.value)(handlers.health_command)
