"""When handling a Slack request fails after Slack was answered: tell the person, log one line.

Pure parts (what failed, why, what was already done) are separate from the one async handler, so
the wording is tested without Slack. The handler is Bolt's app-wide error handler (`app.error`).

Why the handler waits for the HTTP answer before returning: Bolt runs a listener as a task and
polls for its `ack()`; when the listener raises, Bolt resets the acknowledgement *after* the error
handler returns. A listener that failed within the poll interval therefore answered Slack 404
("didn't call ack()") after 3 s. `web.py` marks each request answered; the handler returns only
after that, or after `ANSWER_WAIT` (longer than Bolt's own 3 s wait) where nothing marks it, as
in Socket Mode.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from slack_bolt.response import BoltResponse

from bot.resilience import CircuitOpen, DatabaseTimeout, OutboundTimeout
from bot.services.audit import AuditKeyMissing
from bot.services.freeze.models import GateUnavailable
from bot.slack import blocks

log = logging.getLogger(__name__)

ANSWERED = "guardrail_answered"  # context key: an asyncio.Event set once Slack got its HTTP answer
ANSWER_WAIT = 3.5  # seconds: Bolt gives up waiting for ack() after 3 s

_DATABASE_MODULES = ("sqlalchemy", "sqlmodel", "psycopg", "psycopg2", "asyncpg", "sqlite3", "aiosqlite")
_SLACK_MODULES = ("slack_sdk", "slack_bolt", "aiohttp")

# What this request already changed, for "… nothing was changed" to stay true (see `changed`).
_changes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("guardrail_changes", default=None)


def changed(what: str) -> None:
    """Record that the current request changed something ("freeze #3 was created"), so a failure
    later in the same request says so instead of "nothing was changed". Each Bolt listener runs
    in its own task, so the list never leaks between requests."""
    done = _changes.get()
    if done is None:
        done = []
        _changes.set(done)
    done.append(what)


def changes_so_far() -> list[str]:
    return list(_changes.get() or [])


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it was raised from or while handling (bounded, cycle-safe)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 10:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _from(exc: BaseException, modules: tuple[str, ...]) -> bool:
    return any(klass.__module__.split(".")[0] in modules for klass in type(exc).__mro__)


def classify(exc: BaseException) -> str | None:
    """ "database unavailable", "Slack error `code`", the audit key, or None when the cause is unknown."""
    for link in _chain(exc):
        if isinstance(link, AuditKeyMissing):
            return "the audit log is signed with GUARDRAIL_AUDIT_KEY and this guardrail has none: an admin must set it"
        # Our own bounds come first: DatabaseTimeout is chained only to the TimeoutError that cut it.
        if isinstance(link, DatabaseTimeout | GateUnavailable) or _from(link, _DATABASE_MODULES):
            return "database unavailable"
        if isinstance(link, (OutboundTimeout, CircuitOpen)) and link.target.startswith("slack:"):
            return f"Slack error: {link}"
        if _from(link, _SLACK_MODULES):
            response: Any = getattr(link, "response", None)
            code = response.get("error") if response is not None and hasattr(response, "get") else None
            return f"Slack error `{code}`" if code else f"Slack error ({type(link).__name__})"
    return None


def what_was_asked(body: dict[str, Any]) -> str:
    """The request in the person's words: "run `/freeze for 1h Demo`", "handle your click on …"."""
    if body.get("command"):
        typed = " ".join(f"{body.get('command')} {body.get('text') or ''}".split())
        return f"run `{blocks.quoted(typed, 80)}`"
    kind = body.get("type")
    if kind == "block_actions":
        action = (body.get("actions") or [{}])[0]
        label = ((action.get("text") or {}).get("text") if isinstance(action, dict) else None) or "that button"
        return f"handle your click on “{blocks.quoted(str(label), 60)}”"
    if kind == "view_submission":
        title = ((body.get("view") or {}).get("title") or {}).get("text") or "that form"
        return f"save “{blocks.quoted(str(title), 60)}”"
    if kind == "event_callback":
        event = body.get("event") or {}
        return "answer your mention" if event.get("type") == "app_mention" else "answer your message"
    if kind in ("shortcut", "message_action"):
        return "run that shortcut"
    return "handle that request"


def user_message(what: str, cause: str, done: list[str]) -> str:
    """The ephemeral text: what could not be done, why, and what was (or was not) changed."""
    if done:
        return f"guardrail could not {what} ({cause}). Already done: {'; '.join(done)}."
    return f"guardrail could not {what} ({cause}); nothing was changed."


Tell = Callable[[dict[str, Any], Any, str], Awaitable[bool]]


def error_handler(tell: Tell) -> Callable[..., Awaitable[BoltResponse | None]]:
    """Bolt's app-wide error handler: one log line, the person told, Slack answered 200."""

    async def on_error(
        error: Exception, body: dict[str, Any], context: Any, response: BoltResponse | None
    ) -> BoltResponse | None:
        reference = secrets.token_hex(3)
        cause = classify(error) or f"unexpected error, logged as {reference}"
        what = what_was_asked(body)
        log.error(
            "could not %s for %s [%s]: %s: %s",
            what,
            context.get("user_id") or "?",
            reference,
            type(error).__name__,
            _first_line(error),
        )
        log.debug("traceback of [%s]", reference, exc_info=error)
        try:
            if not await tell(body, context, user_message(what, cause, changes_so_far())):
                log.warning("nobody could be told about [%s]: the request names no way to reach its sender", reference)
        except Exception as exc:
            log.warning(
                "could not tell %s about [%s] either: %s", context.get("user_id") or "?", reference, _first_line(exc)
            )
        if response is not None:
            # Not acknowledged yet: answer 200 ourselves instead of Bolt's 500.
            return BoltResponse(status=200, body="")
        answered = context.get(ANSWERED)
        if not isinstance(answered, asyncio.Event):
            await asyncio.sleep(ANSWER_WAIT)  # Socket Mode: nothing marks the answer; outwait Bolt's poll
            return None
        try:
            await asyncio.wait_for(answered.wait(), ANSWER_WAIT)
        except TimeoutError:
            pass
        return None

    return on_error


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return blocks.truncate(text[0], 300) if text else type(exc).__name__
