"""FakeSlack: a Starlette app that answers the Slack Web API like Slack, for the real slack_sdk.

Point `AsyncWebClient(token="xoxb-test-token", base_url=standin.api_url)` at it unmodified. It
checks tokens, records every call (rejected ones too), keeps channel/message/view state, applies
Slack's Block Kit and message limits, serves response_urls, and lets a test inject rate limits,
failures and latency. The Slack semantics live in the `methods_*` modules and `workspace`; this
module is the HTTP surface and the test controls.

Waiting only sees what came after the test's last action: every request a `SlackEventsClient` (or
the Socket Mode hub) sends first takes a `mark()`, and `wait_for`/`wait_for_response` without
`after=` start from that mark. So "act, then wait" can never be satisfied by an earlier step's
output. Pass `after=fake.mark()` taken yourself for anything else (a scheduler tick, concurrent
actions), or `after=BEGINNING` to search the whole log. With more than one client open at once
(two replicas), "the last action" could be the other replica's and skip past what this one
caused: the default then refuses (`AmbiguousWait`) — pass `after=` (a client's own
`last_action` is its last request's mark).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from . import methods_chat, methods_conversations, methods_misc
from .blocks import MAX_MESSAGE_BLOCKS, check_blocks, check_message_text
from .errors import SlackError
from .manifest import bot_scopes
from .recorder import BEGINNING, Call, Mark, Recorder, ResponsePost
from .socket_mode import SocketModeHub
from .workspace import Json, Workspace

DEFAULT_TOKEN = "xoxb-test-token"
# A token installed from the repository's manifest has exactly its bot scopes.
MANIFEST_SCOPES: tuple[str, ...] = bot_scopes()
METHODS = {**methods_chat.HANDLERS, **methods_conversations.HANDLERS, **methods_misc.HANDLERS}
# Arguments slack_sdk (or a bot) may send as JSON strings inside form data.
_JSON_ARGS = ("blocks", "attachments", "view", "metadata")


class AmbiguousWait(RuntimeError):
    """A wait without `after=` while several clients send requests (see the module docstring)."""


@dataclass
class _Fault:
    """An injected answer for the next `times` calls of a method."""

    times: int
    status: int
    error: str
    retry_after: int | None = None


@dataclass
class _Hold:
    """A call whose answer waits for `gate` (see FakeSlack.hold)."""

    gate: asyncio.Event
    predicate: Callable[[Call], bool] | None


class FakeSlack(Workspace):
    """The Slack Web API stand-in (see module docstring). `url` is set once it is being served."""

    def __init__(
        self,
        valid_tokens: Iterable[str] | None = None,
        *,
        strict_channels: bool = False,
        users: Mapping[str, Json] | None = None,
        usergroups: Mapping[str, list[str]] | None = None,
    ) -> None:
        super().__init__(strict_channels=strict_channels, users=users, usergroups=usergroups)
        self.valid_tokens: set[str] = set(valid_tokens) if valid_tokens is not None else {DEFAULT_TOKEN}
        self.url = ""
        self._recorder = Recorder()
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._minted: dict[str, str] = {}
        # (method or "response_url", the client's address) per request: which TCP connection carried it.
        self.peers: list[tuple[str, tuple[str, int] | None]] = []
        self._holds: dict[str, list[_Hold]] = {}
        self._gates: list[asyncio.Event] = []  # every hold's gate, pending or holding a call now
        self.last_action: Mark = BEGINNING
        # What auth.test's `x-oauth-scopes` header lists, as Slack sends it (None: no header).
        self.token_scopes: list[str] | None = list(MANIFEST_SCOPES)
        self._senders: list[object] = []  # clients open that have sent requests (see action_started)
        self._listeners: list[Callable[[], None]] = []
        self.socket_mode = SocketModeHub(on_send=lambda: self.action_started(self.socket_mode))
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{token:path}", self._response_url, methods=["POST"]),
                WebSocketRoute("/socket-mode", self.socket_mode.endpoint),
            ]
        )

    # -- what tests read -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk clients ("http://127.0.0.1:PORT/api/")."""
        return f"{self.url}/api/"

    @property
    def calls(self) -> list[Call]:
        """Every Web API call, oldest first, including rejected ones."""
        return self._recorder.calls

    @property
    def responses(self) -> list[ResponsePost]:
        """Every response_url post, oldest first."""
        return self._recorder.responses

    def calls_to(self, method: str, *, after: Mark = BEGINNING) -> list[Call]:
        """Every call of `method` recorded after `after` (default: all), failed ones included."""
        return self._recorder.calls_to(method, after=after)

    def calls_after(self, mark: Mark) -> list[Call]:
        """Web API calls recorded after `mark`, oldest first."""
        return self._recorder.calls_after(mark)

    def responses_after(self, mark: Mark) -> list[ResponsePost]:
        """response_url posts recorded after `mark`, oldest first."""
        return self._recorder.responses_after(mark)

    def mark(self) -> Mark:
        """A cursor at the end of the call and response logs: `wait_for(..., after=mark)` then sees
        only what is recorded from now on."""
        return self._recorder.mark()

    def action_started(self, sender: object | None = None) -> Mark:
        """Called by the events client and the Socket Mode hub before each request they send: the
        mark that waits without `after=` start from (refused once two senders are open)."""
        self.last_action = self._recorder.mark()
        if sender is not None and not any(s is sender for s in self._senders):
            self._senders.append(sender)
        return self.last_action

    def sender_closed(self, sender: object) -> None:
        """A client is closed: its requests no longer make the default cursor ambiguous."""
        self._senders = [s for s in self._senders if s is not sender]

    def _default_start(self) -> Mark:
        if len(self._senders) > 1:
            raise AmbiguousWait(
                f"{len(self._senders)} clients are sending requests, so the last action may be "
                "another's: pass after=fake.mark() (or after=client.last_action)"
            )
        return self.last_action

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the harness API takes a timeout)
        *,
        after: Mark | None = None,
    ) -> Call:
        """First successful `method` call matching `predicate` recorded after `after` (default: since
        the last request a test client sent), already recorded or yet to come (see Recorder)."""
        start = self._default_start() if after is None else after
        return await self._recorder.wait_for(method, predicate, timeout, after=start)

    async def wait_for_response(
        self,
        predicate: Callable[[ResponsePost], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the harness API takes a timeout)
        *,
        after: Mark | None = None,
    ) -> ResponsePost:
        """First accepted response_url post matching `predicate` recorded after `after` (default: since
        the last request a test client sent), already recorded or yet to come."""
        start = self._default_start() if after is None else after
        return await self._recorder.wait_for_response(predicate, timeout, after=start)

    def on_record(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every recorded call or response_url post (the sandbox page's live
        updates); it runs on the serving loop and must not block."""
        self._listeners.append(listener)

    def _recorded(self) -> None:
        for listener in self._listeners:
            listener()

    def describe_calls(self) -> str:
        """The call log as text, for custom assertion messages."""
        return self._recorder.describe()

    # -- what tests control --------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429, `Retry-After`, and `ratelimited`.

        `method="*"` applies to every method that has no fault of its own queued."""
        self._faults.setdefault(method, []).append(_Fault(times, 429, "ratelimited", retry_after))

    def fail(self, method: str, error: str = "fatal_error", times: int = 1, *, status: int = 200) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}` with `status`."""
        self._faults.setdefault(method, []).append(_Fault(times, status, error))

    def delay(self, method: str, seconds: float) -> None:
        """Answer every later `method` call after `seconds` (0 removes). Effects apply on arrival."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def hold(self, method: str, predicate: Callable[[Call], bool] | None = None) -> asyncio.Event:
        """The next `method` call (matching `predicate`) takes effect and is recorded at once, but its
        answer waits until the returned event is set: the bot is caught between Slack acting and the
        bot hearing so."""
        gate = asyncio.Event()
        self._holds.setdefault(method, []).append(_Hold(gate, predicate))
        self._gates.append(gate)
        return gate

    def release_holds(self) -> None:
        """Answer every held call now (the fixture does this before stopping, so a test that failed
        mid-hold ends with its real error, not the bot's calls cut off)."""
        for gate in self._gates:
            gate.set()
        self._holds.clear()

    def response_url(self, name: str = "response") -> str:
        """Mint a response_url; posts to it are recorded as `ResponsePost(name=name, ...)`."""
        if not self.url:
            raise RuntimeError("FakeSlack is not being served yet (use the fake_slack fixture)")
        token = f"{name}-{len(self._minted) + 1}"
        self._minted[token] = name
        return f"{self.url}/response/{token}"

    def reset(self) -> None:
        """Forget calls, responses, injected faults, holds and delays; reseed the workspace state."""
        self._recorder.clear()
        self._faults.clear()
        self._delays.clear()
        self._holds.clear()
        self._minted.clear()
        self.token_scopes = list(MANIFEST_SCOPES)
        self.peers.clear()
        self.reset_state()

    # -- HTTP ----------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        """`/api/{method}`: decode, dispatch, record, optionally delay, answer."""
        method = request.path_params["method"]
        self.peers.append((method, _peer(request)))
        at = time.time()
        args, token, parse_error = await _read_args(request)
        status, body, headers = self._dispatch(method, args, token, parse_error)
        if method == "auth.test" and body.get("ok") and self.token_scopes is not None:
            headers = {**headers, "x-oauth-scopes": ",".join(self.token_scopes)}
        error = None if body.get("ok") else str(body.get("error"))
        call = Call(method, args, at, error, status, body, token)
        await self._recorder.add_call(call)
        self._recorded()
        await self._held(call)
        if method in self._delays:
            await asyncio.sleep(self._delays[method])
        return JSONResponse(body, status_code=status, headers=headers)

    async def _held(self, call: Call) -> None:
        """Wait for the release of the first hold on this call's method that matches it, if any."""
        holds = self._holds.get(call.method) or []
        hold = next((h for h in holds if h.predicate is None or h.predicate(call)), None)
        if hold is not None:
            holds.remove(hold)
            await hold.gate.wait()

    def _dispatch(
        self, method: str, args: Json, token: str | None, parse_error: str | None
    ) -> tuple[int, Json, dict[str, str]]:
        """Slack's order: unknown method, auth, injected faults, then the method itself."""
        handler = METHODS.get(method)
        try:
            if handler is None and method != "apps.connections.open":
                raise SlackError("unknown_method")
            if not token:
                raise SlackError("not_authed")
            if method == "apps.connections.open":
                # Socket Mode takes the app-level token, never the bot token.
                if not token.startswith("xapp-"):
                    raise SlackError("invalid_auth")
                return 200, {"ok": True, "url": self.url.replace("http", "ws", 1) + self.socket_mode.path}, {}
            if token not in self.valid_tokens:
                raise SlackError("invalid_auth")
            if parse_error:
                raise SlackError(parse_error)
            self._raise_injected_fault(method)
            assert handler is not None  # apps.connections.open, the one method without one, returned above
            return 200, {"ok": True, **handler(self, args)}, {}
        except SlackError as exc:
            return exc.status, exc.body(), exc.headers

    def _raise_injected_fault(self, method: str) -> None:
        """Raise the next queued fault for `method`, if any."""
        queue = self._faults.get(method) or self._faults.get("*")
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        raise SlackError(fault.error, status=fault.status, headers=headers)

    async def _response_url(self, request: Request) -> Response:
        """`/response/{token}`: record the post; "ok" like Slack, or 400 with Slack's error text."""
        token = request.path_params["token"]
        self.peers.append(("response_url", _peer(request)))
        raw = await request.body()
        error = await self._record_message(self._minted.get(token, token), raw, request.headers.get("content-type", ""))
        if error:
            return PlainTextResponse(error, status_code=400)
        return PlainTextResponse("ok")

    async def record_acknowledgement(self, name: str, raw: bytes) -> None:
        """A slash command acknowledged with a message in the HTTP body: Slack shows it like a
        response_url post, so it is recorded as one (`ResponsePost(name=name)`); an invalid one
        is recorded with Slack's error (the user would see "failed with the error …")."""
        await self._record_message(name, raw, "application/json")

    async def _record_message(self, name: str, raw: bytes, content_type: str) -> str | None:
        try:
            body = _response_body(raw, content_type)
            for key in _JSON_ARGS:
                if key in body:
                    body[key] = _maybe_json(body[key])
            check_message_text(body.get("text"))
            if body.get("blocks") is not None:
                check_blocks(body["blocks"], max_blocks=MAX_MESSAGE_BLOCKS)
            error = None
        except SlackError as exc:
            error = exc.error
        except ValueError:
            body, error = {"raw": raw.decode(errors="replace")}, "invalid_payload"
        await self._recorder.add_response(ResponsePost(name, body, time.time(), error))
        self._recorded()
        return error


def _peer(request: Request) -> tuple[str, int] | None:
    return (request.client.host, request.client.port) if request.client else None


async def _read_args(request: Request) -> tuple[Json, str | None, str | None]:
    """Query + form or JSON body into one dict, the token, and a parse error code if any.

    Like Slack, a token is taken from `Authorization: Bearer` or a form/query `token` field, never
    from a JSON body. JSON-string `blocks`/`attachments`/`view` are decoded into Python objects.
    """
    args: Json = dict(request.query_params)
    raw = await request.body()
    parse_error = None
    body: Json = {}
    if raw and "application/json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(raw)
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            parse_error = "invalid_json"
        body.pop("token", None)  # Slack ignores tokens in JSON bodies
    elif raw:
        body = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    args.update(body)
    token = args.pop("token", None)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    for key in _JSON_ARGS:
        if key in args:
            args[key] = _maybe_json(args[key])
    return args, token if isinstance(token, str) else None, parse_error


def _maybe_json(value: Any) -> Any:
    """Decode a JSON string argument; leave anything else (or invalid JSON) as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _response_body(raw: bytes, content_type: str) -> Json:
    """A response_url body: JSON, or a legacy form `payload=<json>`. ValueError if neither."""
    if "application/x-www-form-urlencoded" in content_type:
        raw = dict(parse_qsl(raw.decode())).get("payload", "").encode()
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("response_url body must be a JSON object")
    return parsed
