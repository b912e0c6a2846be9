"""The one exception the stand-in's Web API methods raise to answer `{"ok": false, ...}`.

Kept in its own module so the Block Kit checks and every method module can raise it without
importing each other.
"""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """A Slack API error: `error` is Slack's error code, `extra` is merged into the response body
    (e.g. `response_metadata.messages` for `invalid_blocks`); `status` and `headers` are HTTP's."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Slack would send for this error."""
        return {"ok": False, "error": self.error, **self.extra}


def invalid_blocks(messages: list[str], *, error: str = "invalid_blocks") -> SlackError:
    """`invalid_blocks` with the human-readable reasons Slack puts in `response_metadata`."""
    return SlackError(error, errors=messages, response_metadata={"messages": messages})
