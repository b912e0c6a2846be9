"""Incident channel names within Slack's rules: lowercase a-z 0-9 - _, at most 80 characters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

MAX_CHANNEL_NAME = 80
MAX_SUFFIX = 20  # inc-…-2 … inc-…-20, then give up: something else is wrong
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """`API down (EU)!` → `api-down-eu`; empty when nothing usable is left."""
    return _NOT_ALLOWED.sub("-", title.lower()).strip("-")


def channel_names(prefix: str, day: date, title: str) -> Iterator[str]:
    """`<prefix>-YYYYMMDD-<slug>`, then the same with -2, -3 … for names already taken."""
    base = f"{prefix}-{day:%Y%m%d}"
    slug = slugify(title) or "incident"
    for n in range(1, MAX_SUFFIX + 1):
        suffix = "" if n == 1 else f"-{n}"
        room = MAX_CHANNEL_NAME - len(base) - 1 - len(suffix)
        yield f"{base}-{slug[:room].rstrip('-')}{suffix}"
