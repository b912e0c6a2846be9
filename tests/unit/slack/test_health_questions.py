"""Which messages ask "are we down?" — a table, because the wrong answer either way is noisy."""

from __future__ import annotations

import pytest

from bot.slack.health import MENTION_USAGE, Question, parse_mention, parse_question, parse_slash

SERVICES = ["api", "checkout", "jobs", "auth-db"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("are we down", Question()),
        ("Are we down?", Question()),
        ("ARE WE DOWN??", Question()),
        ("hey, are we down or is it just me?", Question()),
        ("is prod down", Question()),
        ("Is production down?", Question()),
        ("is anything down?", Question()),
        ("Is everything broken?", Question()),
        ("is the site down?!", Question()),
        ("is checkout down", Question("checkout")),
        ("Is Checkout broken?", Question("checkout")),
        ("is checkout failing", Question("checkout")),
        ("is the api down?", Question("api")),
        ("is auth-db down?", Question("auth-db")),
        ("is the jobs service failing?", Question("jobs")),
        ("<@U0BOT> are we down?", Question()),
        ("are we\ndown?", Question()),
        ("hey are we down?", Question()),
        ("Deploy just finished. Is checkout down?", Question("checkout")),
        ("is checkout down for everyone?", Question("checkout")),
        ("> the alert said this\nare we down?", Question()),
        ("&gt; the alert said this\nare we down?", Question()),  # how Slack sends a quote
        # chatter that merely contains the words
        ("let's sit down and plan", None),
        ("we are down to two reviewers this week", None),
        ("I wrote down the steps", None),
        ("the downtime window is at 2", None),
        ("is payroll down?", None),  # not a configured service
        ("checkout is down", None),  # a statement, not a question we answer
        ("are we downsizing?", None),
        ("is checkoutv2 down", None),
        ("", None),
        ("are we down to the last reviewer?", None),
        ("is checkout down to 2 replicas?", None),
        ("is everything broken down by team?", None),
        ("this is prod down time", None),
        ("nobody is checkout down", None),
        ("is checkout dead code?", None),
        ("is prod down-scaled tonight?", None),
        ("\u201care we down?\u201d is what everyone asks", None),
        ('she wrote "are we down?" in the wrong channel', None),
        ("> are we down?", None),
        ("&gt; are we down?", None),
        ("`are we down`", None),
        ("```\nare we down?\n```", None),
    ],
)
def test_questions_in_messages(text: str, expected: Question | None) -> None:
    assert parse_question(text, SERVICES) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U0BOT> status", Question()),
        ("<@U0BOT> Status?", Question()),
        ("<@U0BOT> health", Question()),
        ("<@U0BOT> status checkout", Question("checkout")),
        ("<@U0BOT> status of the checkout?", Question("checkout")),
        ("<@U0BOT> is jobs failing?", Question("jobs")),
        ("<@U0BOT> status: checkout", Question("checkout")),
        ("<@U0BOT> status, please", Question()),
        ("<@U0BOT> health; jobs?", Question("jobs")),
        ("<@U0BOT> status payroll", Question("payroll")),  # the service says it does not know it
        ("<@U0BOT> status api jobs", f"I could not read that. {MENTION_USAGE}"),
        ("<@U0BOT> thanks!", MENTION_USAGE),
        ("<@U0BOT> what's the status page url", MENTION_USAGE),
    ],
)
def test_mentions(text: str, expected: Question | str) -> None:
    assert parse_mention(text, SERVICES) == expected


def test_slash_arguments() -> None:
    assert parse_slash("") == Question()
    assert parse_slash("Checkout") == Question("checkout")
    assert parse_slash("payroll") == Question("payroll")  # the service says it does not know it
    assert parse_slash("api jobs") == (
        "I could not read `api jobs`. Usage: `/health` for every service, `/health <service>` for one."
    )
