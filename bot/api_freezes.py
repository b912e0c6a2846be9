"""`/api/v1/freezes`: calendars and release tooling schedule, list and cancel freeze windows.

The same service calls as `/freeze` in Slack, so the same rules (known environment, a reason,
ends after it starts and in the future, at most `freeze.max_duration`, starts within a year),
the same announcement in the deploys channel and the same audit entries, with the token's name
as the actor (`api:release-bot`; GUARDRAIL_API_TOKEN is `api:default`).

What a token may do: create windows (in Slack anyone may freeze) and list them; cancel only the
windows it created itself. Lifting someone else's freeze bypasses the two-person break-glass, so
in Slack only a responder may, and a token is no responder: a window made in Slack or by another
token is cancelled by a responder in Slack (403 says so).

A POST with an `Idempotency-Key` header (per token) is done once: a retry gets the same window
(201, `Idempotent-Replayed: true`), the same key with another body is 422, and a retry while the
first attempt is still at work is 409 (see bot/services/idempotency.py).

Every bad input is a 4xx with a JSON reason, never a 5xx: 422 for invalid fields, 404 for an
unknown window, 409 for one already cancelled or ended, 503 when the database does not answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.api import _IDEMPOTENCY_KEY, MAX_BODY, _parse_json, _query, _read_body, _TooLarge, _unprocessable
from bot.config import parse_duration
from bot.freeze_text import plain, window_json
from bot.runtime import Runtime
from bot.services.freeze.models import FreezeRefused, FreezeWindow, NotFound
from bot.services.idempotency import IdempotentRequests, KeyPending, KeyReused

log = logging.getLogger(__name__)

_WINDOW_ID = re.compile(r"[0-9]{1,9}")  # ASCII digits; 9 fit a PostgreSQL integer
_FIELDS = ("environment", "reason", "starts_at", "ends_at", "duration")
_TIME_RULE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-12-01T14:00:00+01:00 or …Z"

TokenName = Callable[[Request], "str | None"]


def parse_time(value: object) -> datetime | str:
    """An ISO 8601 instant in UTC, or why `value` is not one (a time without an offset is ambiguous)."""
    if not isinstance(value, str) or not value.isascii():
        return _TIME_RULE
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _TIME_RULE
    if moment.tzinfo is None or moment.utcoffset() is None:
        return "has no UTC offset; add one, e.g. 2026-12-01T14:00:00+01:00 or 2026-12-01T13:00:00Z"
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return "is out of range: keep dates between year 1 and 9999"


def parse_window(body: Any, environments: list[str], now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    """The body of POST /api/v1/freezes → (environment, reason, starts_at, ends_at) and field errors."""
    if not isinstance(body, dict):
        return {}, {
            "body": "must be a JSON object with environment, reason, optional starts_at, and ends_at or duration"
        }
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    environment = body.get("environment")
    if environment is None or environment == "":
        errors["environment"] = f"is required; one of {', '.join(environments)}"
    elif not isinstance(environment, str) or environment not in environments:
        errors["environment"] = f"unknown environment; one of {', '.join(environments)}"
    else:
        clean["environment"] = environment
    reason = body.get("reason")
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        errors["reason"] = "is required: say why the window is needed"
    elif not isinstance(reason, str):
        errors["reason"] = "must be a string"
    else:
        clean["reason"] = reason
    start: datetime | str = now
    if body.get("starts_at") is not None:
        start = parse_time(body["starts_at"])
        if isinstance(start, str):
            errors["starts_at"] = start
    end: datetime | str | None = None
    if "ends_at" in body and "duration" in body:
        errors["duration"] = "give either ends_at or duration, not both"
    elif body.get("ends_at") is not None:
        end = parse_time(body["ends_at"])
        if isinstance(end, str):
            errors["ends_at"], end = end, None
    elif body.get("duration") is not None:
        length = _duration(body["duration"])
        if isinstance(length, str):
            errors["duration"] = length
        elif isinstance(start, datetime):
            try:
                end = start + length
            except OverflowError:
                errors["duration"] = "ends out of range: keep dates between year 1 and 9999"
    else:
        errors["ends_at"] = 'is required (or give duration, e.g. "2h")'
    if isinstance(start, datetime) and isinstance(end, datetime):
        clean["starts_at"], clean["ends_at"] = start, end
    for key in sorted(set(body) - set(_FIELDS))[:10]:  # shown back safely: a lone surrogate cannot be encoded
        errors[str(key)[:50].encode("utf-8", "backslashreplace").decode("utf-8")] = "unknown field"
    return clean, errors


def _duration(value: object) -> timedelta | str:
    rule = "must be a duration like 30m, 2h, 1d or 1h30m"
    if not isinstance(value, str) or not value.isascii():
        return rule
    try:
        length = parse_duration(value)
    except (ValueError, OverflowError) as exc:
        return f"is out of range: {exc}" if "too long" in str(exc) else rule
    return length if length > timedelta(0) else "must be longer than nothing"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _unavailable(exc: Exception) -> JSONResponse:
    log.warning("/api/v1/freezes: the database failed: %s: %s", type(exc).__name__, str(exc)[:200])
    return JSONResponse(
        {"error": "the database did not answer; nothing was changed, retry later", "reason": type(exc).__name__},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def freeze_routes(runtime: Runtime, token_name: TokenName, unauthorized: Callable[[], JSONResponse]) -> list[Route]:
    freezes = runtime.freezes
    requests = IdempotentRequests(runtime.db, runtime.clock)

    def now() -> datetime:
        return runtime.clock.now()

    async def create(request: Request) -> Response:
        name = token_name(request)
        if name is None:
            return unauthorized()
        try:
            raw = await _read_body(request)
        except _TooLarge:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        body, problem = _parse_json(raw)
        if problem is not None:
            return _unprocessable({"body": problem})
        fields, errors = parse_window(body, freezes.environments, now())
        key = request.headers.get("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            errors["Idempotency-Key"] = "must be 1-200 printable ASCII characters"
        if errors:
            return _unprocessable(errors)
        actor = f"api:{name}"

        async def create_window() -> int:
            window = await freezes.create(
                starts_at=fields["starts_at"],
                ends_at=fields["ends_at"],
                environment=fields["environment"],
                reason=fields["reason"],
                actor=actor,
            )
            return window.id

        replayed = False
        try:
            if key is None:
                window_id = await create_window()
            else:  # a retry (CI after a timeout) gets the window its first attempt created
                done = await requests.run(scope=f"freeze:{actor}", key=key, request=body, work=create_window)
                window_id, replayed = done.result_id, done.replayed
            window = await freezes.get(window_id)
        except FreezeRefused as exc:
            field = exc.field or "body"
            if field == "ends_at" and "duration" in body:
                field = "duration"
            return _unprocessable({field: plain(exc.message)})
        except KeyReused:
            return _unprocessable({"Idempotency-Key": "was used for a different request; use a new key"})
        except KeyPending as exc:
            if exc.stale:
                return _error(
                    409,
                    "an earlier request with this Idempotency-Key did not finish: it may or may not "
                    "have created a window; check GET /api/v1/freezes, then retry with a new key",
                )
            return JSONResponse(
                {"error": "a request with this Idempotency-Key is still being processed; retry in a few seconds"},
                status_code=409,
                headers={"Retry-After": "2"},
            )
        except Exception as exc:  # the database: a 503 with the reason, never a 500
            return _unavailable(exc)
        # Slack is not waited on: the announcement was written to the outbox with the window.
        headers = {"Location": f"/api/v1/freezes/{window.id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(window_json(window, now()), status_code=201, headers=headers)

    async def listing(request: Request) -> Response:
        if token_name(request) is None:
            return unauthorized()
        params, errors = _query(request, "environment")
        if errors:
            return _unprocessable(errors)
        environment = params["environment"] or None
        if environment is not None and environment not in freezes.environments:
            return _unprocessable({"environment": f"unknown environment; one of {', '.join(freezes.environments)}"})
        try:
            windows = await freezes.upcoming()
        except Exception as exc:
            return _unavailable(exc)
        at = now()
        return JSONResponse(
            {"freezes": [window_json(w, at) for w in windows if environment is None or w.environment == environment]}
        )

    async def window_or_error(request: Request) -> FreezeWindow | Response:
        text = request.path_params["window_id"]
        if not _WINDOW_ID.fullmatch(text):
            return _unprocessable({"id": "must be a window number, e.g. /api/v1/freezes/3"})
        try:
            return await freezes.get(int(text))
        except NotFound:
            return _error(404, f"there is no freeze window #{text}")
        except Exception as exc:
            return _unavailable(exc)

    async def show(request: Request) -> Response:
        if token_name(request) is None:
            return unauthorized()
        found = await window_or_error(request)
        return found if isinstance(found, Response) else JSONResponse(window_json(found, now()))

    async def cancel(request: Request) -> Response:
        name = token_name(request)
        if name is None:
            return unauthorized()
        found = await window_or_error(request)
        if isinstance(found, Response):
            return found
        actor, at = f"api:{name}", now()
        if found.cancelled_at is not None:
            return _error(
                409,
                f"freeze window #{found.id} was already cancelled by {found.cancelled_by}",
                window=window_json(found, at),
            )
        if found.ends_at <= at:
            return _error(409, f"freeze window #{found.id} has already ended", window=window_json(found, at))
        if found.created_by != actor:
            return _error(
                403,
                f"freeze window #{found.id} was created by {found.created_by}, not by this token "
                f"({actor}): a token cancels only its own windows; a responder can cancel it in "
                f"Slack with /freeze cancel #{found.id}",
            )
        try:
            window = await freezes.cancel(found.id, actor=actor)
        except NotFound:
            return _error(404, f"there is no freeze window #{found.id}")
        except FreezeRefused as exc:  # cancelled or ended between our look and the change
            return _error(409, plain(exc.message))
        except Exception as exc:
            return _unavailable(exc)
        return JSONResponse(window_json(window, now()))

    return [
        Route("/api/v1/freezes", create, methods=["POST"]),
        Route("/api/v1/freezes", listing, methods=["GET"]),
        Route("/api/v1/freezes/{window_id}", show, methods=["GET"]),
        Route("/api/v1/freezes/{window_id}", cancel, methods=["DELETE"]),
    ]
