"""The repository's Slack app manifest, as the stand-in knows it: the bot's scopes and the slash
commands with their usage hints.

It is read from `slack-manifest.yml` at the repository root (a checkout or an editable install);
an installed wheel has no manifest, and then the stand-in grants no scope header and knows no hints.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

MANIFEST = Path(__file__).resolve().parents[3] / "slack-manifest.yml"


@cache
def manifest() -> dict[str, Any]:
    """The parsed manifest, or {} when this install has none."""
    if not MANIFEST.is_file():
        return {}
    loaded = yaml.safe_load(MANIFEST.read_text())
    return loaded if isinstance(loaded, dict) else {}


def bot_scopes() -> tuple[str, ...]:
    """The bot token scopes the manifest asks for."""
    return tuple(manifest().get("oauth_config", {}).get("scopes", {}).get("bot", []))


def slash_commands() -> list[dict[str, str]]:
    """[{"command": "/freeze", "description": …, "usage_hint": …}, …] from the manifest."""
    commands = manifest().get("features", {}).get("slash_commands", [])
    return [
        {
            "command": str(c.get("command", "")),
            "description": str(c.get("description", "")),
            "usage_hint": str(c.get("usage_hint", "")),
        }
        for c in commands
        if isinstance(c, dict)
    ]
