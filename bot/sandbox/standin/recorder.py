"""What the bot sent to "Slack", and waiting for it without sleeping.

Every Web API call and every response_url post is appended here and wakes waiters through an
asyncio.Condition, so a test can `await wait_for(...)` a call the bot makes in a background task
and fail with the full call log instead of a bare timeout.

A `Mark` is a cursor into both logs: `wait_for(..., after=mark)` only sees what was recorded after
the mark was taken, so a wait cannot be satisfied by output of an earlier step. `BEGINNING` is the
mark before everything.
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


@dataclass(frozen=True, order=True)
class Mark:
    """A position in the recorder's logs: how many calls and response_url posts had been recorded
    (ever, across `clear()`) when it was taken."""

    calls: int = 0
    responses: int = 0


BEGINNING = Mark()


class Recorder:
    """Append-only logs of calls and response_url posts, with condition-based waiting."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: list[ResponsePost] = []
        # How many entries `clear()` forgot, so marks taken before a clear stay meaningful.
        self._calls_cleared = 0
        self._responses_cleared = 0
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def clear(self) -> None:
        """Forget everything recorded (waiters keep waiting for new entries)."""
        self._calls_cleared += len(self.calls)
        self._responses_cleared += len(self.responses)
        self.calls.clear()
        self.responses.clear()

    def mark(self) -> Mark:
        """The current end of both logs: pass it as `after=` to see only what comes next."""
        return Mark(self._calls_cleared + len(self.calls), self._responses_cleared + len(self.responses))

    def calls_after(self, mark: Mark) -> list[Call]:
        """Calls recorded after `mark`, oldest first."""
        return self.calls[max(mark.calls - self._calls_cleared, 0) :]

    def responses_after(self, mark: Mark) -> list[ResponsePost]:
        """response_url posts recorded after `mark`, oldest first."""
        return self.responses[max(mark.responses - self._responses_cleared, 0) :]

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

    def calls_to(self, method: str, *, after: Mark = BEGINNING) -> list[Call]:
        """Every call of `method` recorded after `after`, failed ones included, oldest first."""
        return [c for c in self.calls_after(after) if c.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the harness API takes a timeout)
        *,
        after: Mark = BEGINNING,
    ) -> Call:
        """The first successful `method` call after `after` matching `predicate`, recorded or to come.

        A predicate that raises LookupError/TypeError (e.g. a missing arg) counts as no match.
        On timeout, raises AssertionError listing every recorded call (those before the mark too).
        """

        def find() -> Call | None:
            for i in range(max(after.calls - self._calls_cleared, 0), len(self.calls)):
                call = self.calls[i]
                if call.method == method and call.ok and _matches(predicate, call):
                    return call
            return None

        found = await self._wait(find, timeout)
        if found is None:
            raise AssertionError(
                f"no successful {method} call after {after} matched within {timeout}s; calls:\n{self.describe()}"
            )
        return found

    async def wait_for_response(
        self,
        predicate: Callable[[ResponsePost], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the harness API takes a timeout)
        *,
        after: Mark = BEGINNING,
    ) -> ResponsePost:
        """The first accepted response_url post after `after` matching `predicate`, recorded or to come."""

        def find() -> ResponsePost | None:
            for i in range(max(after.responses - self._responses_cleared, 0), len(self.responses)):
                post = self.responses[i]
                if post.ok and _matches(predicate, post):
                    return post
            return None

        found = await self._wait(find, timeout)
        if found is None:
            posts = "\n".join(f"  {r.name}: {_short(r.body)}" for r in self.responses) or "  (none)"
            raise AssertionError(f"no response_url post after {after} matched within {timeout}s; posts:\n{posts}")
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
        lines = [f"  {c.method} {'ok' if c.ok else c.error} (HTTP {c.status}) {_short(c.args)}" for c in self.calls]
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
