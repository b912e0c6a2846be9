"""What the bot sent to "Slack", and waiting for it without sleeping.

Every Web API call and every response_url post is appended here and wakes waiters through an
asyncio.Condition, so a test can `await wait_for(...)` a call the bot makes in a background task
and fail with the full call log instead of a bare timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One Web API request: method, decoded arguments (token removed), when, and how it ended."""

    method: str
    args: dict[str, Any]
    at: float
    error: str | None = None
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    token: str | None = None

    @property
    def ok(self) -> bool:
        """True when Slack would have answered `"ok": true`."""
        return self.error is None


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url minted by the stand-in (`name` is the name given when minting)."""

    name: str
    body: dict[str, Any]
    at: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when Slack would have answered 200 "ok"."""
        return self.error is None

    @property
    def text(self) -> str | None:
        """The `text` field, if any."""
        value = self.body.get("text")
        return value if isinstance(value, str) else None

    @property
    def blocks(self) -> list[Any] | None:
        """The `blocks` field, if any."""
        value = self.body.get("blocks")
        return value if isinstance(value, list) else None

    @property
    def response_type(self) -> str:
        """ "ephemeral" (Slack's default) or "in_channel"."""
        return str(self.body.get("response_type") or "ephemeral")

    @property
    def replace_original(self) -> bool:
        """Whether the post replaces the message the action came from."""
        return bool(self.body.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        """Whether the post deletes the message the action came from."""
        return bool(self.body.get("delete_original"))


class Recorder:
    """Append-only logs of calls and response_url posts, with condition-based waiting."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: list[ResponsePost] = []
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def clear(self) -> None:
        """Forget everything recorded (waiters keep waiting for new entries)."""
        self.calls.clear()
        self.responses.clear()

    def _cond(self) -> asyncio.Condition:
        """The condition for the running loop (a new one if the stand-in moved to another loop)."""
        loop = asyncio.get_running_loop()
        if self._condition is None or self._loop is not loop:
            self._condition, self._loop = asyncio.Condition(), loop
        return self._condition

    async def _notify(self) -> None:
        cond = self._cond()
        async with cond:
            cond.notify_all()

    async def add_call(self, call: Call) -> None:
        """Record a Web API call and wake waiters."""
        self.calls.append(call)
        await self._notify()

    async def add_response(self, post: ResponsePost) -> None:
        """Record a response_url post and wake waiters."""
        self.responses.append(post)
        await self._notify()

    def calls_to(self, method: str) -> list[Call]:
        """Every recorded call of `method`, failed ones included, oldest first."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the harness API takes a timeout)
    ) -> Call:
        """The first successful `method` call matching `predicate`, already recorded or yet to come.

        A predicate that raises LookupError/TypeError (e.g. a missing arg) counts as no match.
        On timeout, raises AssertionError listing every recorded call.
        """

        def find() -> Call | None:
            return next(
                (c for c in self.calls if c.method == method and c.ok and _matches(predicate, c)), None
            )

        found = await self._wait(find, timeout)
        if found is None:
            raise AssertionError(
                f"no successful {method} call matched within {timeout}s; calls:\n{self.describe()}"
            )
        return found

    async def wait_for_response(
        self,
        predicate: Callable[[ResponsePost], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the harness API takes a timeout)
    ) -> ResponsePost:
        """The first accepted response_url post matching `predicate`, recorded or yet to come."""

        def find() -> ResponsePost | None:
            return next((r for r in self.responses if r.ok and _matches(predicate, r)), None)

        found = await self._wait(find, timeout)
        if found is None:
            posts = "\n".join(f"  {r.name}: {_short(r.body)}" for r in self.responses) or "  (none)"
            raise AssertionError(f"no response_url post matched within {timeout}s; posts:\n{posts}")
        return found

    async def _wait(self, find: Callable[[], T | None], timeout: float) -> T | None:  # noqa: ASYNC109 (the harness API takes a timeout)
        """Wait on the condition until `find()` returns something, or None after `timeout`."""
        cond = self._cond()
        try:
            async with asyncio.timeout(timeout), cond:
                return await cond.wait_for(find)
        except TimeoutError:
            return None

    def describe(self) -> str:
        """The call log, one line per call, for assertion messages."""
        lines = [
            f"  {c.method} {'ok' if c.ok else c.error} (HTTP {c.status}) {_short(c.args)}" for c in self.calls
        ]
        return "\n".join(lines) or "  (none)"


def _matches(predicate: Callable[[T], bool] | None, item: T) -> bool:
    """Apply a test's predicate, treating lookup/type errors as "not this one"."""
    if predicate is None:
        return True
    try:
        return bool(predicate(item))
    except (LookupError, TypeError):
        return False


def _short(value: Any, limit: int = 300) -> str:
    """A one-line JSON rendering, truncated for readable failure messages."""
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
