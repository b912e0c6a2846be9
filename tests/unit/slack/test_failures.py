"""What a person is told when their request failed after Slack was answered (pure parts)."""

from __future__ import annotations

import sqlite3

import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.resilience import DatabaseTimeout, OutboundTimeout
from bot.services.freeze.models import GateUnavailable
from bot.slack.failures import classify, user_message, what_was_asked


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as caught:
        return caught


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (OperationalError("SELECT 1", {}, Exception("connection refused")), "database unavailable"),
        (PoolTimeout("QueuePool limit reached"), "database unavailable"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "database unavailable"),
        (
            _raised_from(RuntimeError("could not record"), sqlite3.OperationalError("disk I/O error")),
            "database unavailable",
        ),
        (
            _raised_from(DatabaseTimeout("the database did not answer within 15s"), TimeoutError()),
            "database unavailable",
        ),
        (GateUnavailable("the database did not answer within 2s"), "database unavailable"),
        (SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"}), "Slack error `ratelimited`"),
        (SlackRequestError("bad"), "Slack error (SlackRequestError)"),
        (OutboundTimeout("slack:views.open", 10), "Slack error: slack:views.open did not answer within 10s"),
        (OutboundTimeout("http:deploy.example.com", 10), None),
        (KeyError("channel"), None),
        (RuntimeError("boom"), None),
    ],
)
def test_causes_are_classified(error: Exception, cause: str | None) -> None:
    assert classify(error) == cause


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"command": "/freeze", "text": "for 1h  Demo"}, "run `/freeze for 1h Demo`"),
        ({"command": "/audit", "text": ""}, "run `/audit`"),
        ({"command": "/freeze", "text": "<!channel> " + "x" * 200}, "run `/freeze &lt;!channel&gt; " + "x" * 60 + "…`"),
        (
            {
                "type": "block_actions",
                "actions": [{"action_id": "a", "text": {"type": "plain_text", "text": "Roll back"}}],
            },
            "handle your click on “Roll back”",
        ),
        ({"type": "block_actions", "actions": [{"action_id": "a"}]}, "handle your click on “that button”"),
        (
            {"type": "view_submission", "view": {"title": {"type": "plain_text", "text": "New freeze window"}}},
            "save “New freeze window”",
        ),
        ({"type": "event_callback", "event": {"type": "app_mention"}}, "answer your mention"),
        ({"type": "event_callback", "event": {"type": "message"}}, "answer your message"),
        ({"type": "shortcut"}, "run that shortcut"),
        ({}, "handle that request"),
    ],
)
def test_the_request_is_named_in_the_persons_words(body: dict[str, object], what: str) -> None:
    assert what_was_asked(body) == what


def test_the_message_says_what_was_changed() -> None:
    assert user_message("run `/audit`", "database unavailable", []) == (
        "guardrail could not run `/audit` (database unavailable); nothing was changed."
    )
    assert user_message("run `/incident declare x`", "Slack error `ratelimited`", ["incident #4 was declared"]) == (
        "guardrail could not run `/incident declare x` (Slack error `ratelimited`). "
        "Already done: incident #4 was declared."
    )
