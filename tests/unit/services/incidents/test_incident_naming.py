"""Incident channel names follow Slack's rules whatever the title."""

from __future__ import annotations

import re
from datetime import date
from itertools import islice

from bot.services.incidents.naming import channel_names, slugify

DAY = date(2026, 11, 30)


def test_slug_is_lowercase_letters_digits_and_dashes() -> None:
    assert slugify("API returns 500s (EU) !!") == "api-returns-500s-eu"
    assert slugify("🔥🔥") == ""


def test_names_are_valid_and_the_suffix_survives_truncation() -> None:
    names = list(islice(channel_names("inc", DAY, "x" * 200), 12))
    assert names[0] == "inc-20261130-" + "x" * 67
    assert names[1].endswith("-2") and names[11].endswith("-12")
    for name in names:
        assert len(name) <= 80 and re.fullmatch(r"[a-z0-9_-]+", name)
    assert len(set(names)) == 12


def test_a_title_without_usable_characters_still_gets_a_name() -> None:
    assert next(channel_names("ops", DAY, "🔥🔥🔥")) == "ops-20261130-incident"


def test_truncation_does_not_leave_a_trailing_dash() -> None:
    title = "a" * 66 + " b"
    assert next(channel_names("inc", DAY, title)) == "inc-20261130-" + "a" * 66
