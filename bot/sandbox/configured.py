"""`python -m bot.sandbox.configured`: exit 0 when a Slack bot token is configured (environment or
.env), 1 when not — `make run` then starts the sandbox instead of `guardrail serve`.

Settings that fail to validate count as configured: `guardrail serve` then says what is wrong,
rather than the sandbox hiding it.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from bot.settings import Settings


def slack_configured() -> bool:
    try:
        return Settings().slack_bot_token is not None
    except ValidationError:
        return True


if __name__ == "__main__":
    sys.exit(0 if slack_configured() else 1)
