"""`/api/v1/…`: the freeze gate CI asks before deploying, recorded deploys, and freeze windows
(bot/api_freezes.py).

Bearer `GUARDRAIL_API_TOKEN` or one of the named `GUARDRAIL_API_TOKENS`, compared in constant time;
without a configured token the API is off and every request is 503 with the reason (a bare 401 left
people guessing). Malformed input is a 4xx with the reason, never a 5xx.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import SplitResult, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.features import API_DISABLED
from bot.runtime import Runtime
from bot.services.changes.deploys import deploy_recorded
from bot.services.freeze.models import (
    SERVICE_NAME,
    SERVICE_NAME_RULE,
    FreezeRefused,
    FreezeWindow,
    GateDecision,
    GateUnavailable,
    RecordedDeploy,
    has_control,
)

MAX_BODY = 65_536  # bytes; a deploy record is a few hundred
_NAME = SERVICE_NAME  # used with fullmatch
_FIELDS = {"environment": 64, "service": 100, "version": 200, "actor": 80}
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_LOOSE = {"version", "actor"}  # "1.4.2 (build 7)", "github-actions[bot]"


def window_json(window: FreezeWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "reason": window.reason,
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "created_by": window.created_by,
    }


def _frozen(decision: GateDecision) -> JSONResponse:
    assert decision.window is not None
    return JSONResponse(
        {"environment": decision.environment, "frozen": True, "window": window_json(decision.window)}, status_code=423
    )


def _unavailable(exc: GateUnavailable) -> JSONResponse:
    """The gate cannot know: fail closed (CI must not deploy), say why, and when to ask again."""
    return JSONResponse(
        {"error": "the freeze gate cannot tell whether deploys may go ahead: do not deploy", "reason": exc.reason},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _unprocessable(errors: dict[str, str]) -> JSONResponse:
    return JSONResponse({"error": "invalid request", "errors": errors}, status_code=422)


def validate_deploy(body: Any, environments: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The deploy fields and the field errors (empty when valid)."""
    if not isinstance(body, dict):
        return {}, {"body": "must be a JSON object with environment, service, version, actor and optional url"}
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for field, limit in _FIELDS.items():
        value = body.get(field)
        if value is None or value == "":
            errors[field] = "is required"
        elif not isinstance(value, str):
            errors[field] = "must be a string"
        elif (
            len(value) > limit
            or value != value.strip()
            or (has_control(value) if field in _LOOSE else not _NAME.fullmatch(value))
        ):
            errors[field] = (
                f"must be 1-{limit} printable characters without surrounding spaces or control characters"
                if field in _LOOSE
                else f"must be 1-{limit} characters: letters, digits "
                "and . _ : / @ + - (starting with a letter or digit)"
            )
        else:
            clean[field] = value
    if "environment" in clean and clean["environment"] not in environments:
        errors["environment"] = f"unknown environment; one of {', '.join(environments)}"
    url = body.get("url")
    if url is not None:
        parts = _split_url(url)
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 1000:
            errors["url"] = "must be an http:// or https:// URL (at most 1000 characters)"
        elif has_control(url) or url != url.strip():
            errors["url"] = "must be one URL without spaces around it or control characters (line breaks, NUL)"
        else:
            clean["url"] = url
    unknown = sorted(set(body) - {*_FIELDS, "url"})
    for key in unknown[:10]:  # shown back safely: a lone surrogate cannot be encoded as UTF-8
        errors[str(key)[:50].encode("utf-8", "backslashreplace").decode("utf-8")] = "unknown field"
    return clean, errors


def _split_url(url: object) -> SplitResult | None:
    """The parts of a URL; None for anything that is not a parseable string ("http://[::1" raises)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError:
        return None
    return parts


def _query(request: Request, *names: str) -> tuple[dict[str, str], dict[str, str]]:
    """The named query parameters (empty when absent) and errors for any given more than once:
    `?environment=nope&environment=production` is ambiguous, so it is refused, never guessed."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in names:
        given = request.query_params.getlist(name)
        if len(given) > 1:
            errors[name] = "is given more than once; give it once"
        values[name] = given[0] if given else ""
    return values, errors


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    """The body, refused (`_TooLarge`) as soon as it is known to exceed MAX_BODY: never read whole first."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes) -> tuple[Any, str | None]:
    """The decoded JSON body, or why it is not one."""
    try:
        return json.loads(raw), None
    except RecursionError:
        return None, "is nested too deeply"
    except (ValueError, UnicodeDecodeError):
        return None, "is not valid JSON"


def token_name(request: Request, tokens: dict[str, str]) -> str | None:
    """The name of the bearer token the request carries (None: missing or wrong). Every configured
    token is compared, in constant time, so the answer's timing says nothing about which came close."""
    header = request.headers.get("authorization", "")
    if not tokens or not header.lower().startswith("bearer "):
        return None
    given = header[7:].strip().encode("utf-8", "replace")
    found = None
    for token, name in tokens.items():
        if hmac.compare_digest(given, token.encode()):
            found = name
    return found


def _unauthorized(runtime: Runtime) -> JSONResponse:
    if not runtime.settings.api_enabled:
        return JSONResponse({"error": "the API is disabled", "reason": API_DISABLED}, status_code=503)
    return JSONResponse(
        {"error": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


def api_routes(runtime: Runtime) -> list[Route]:
    from bot.api_freezes import freeze_routes  # it builds on this module's helpers

    tokens = runtime.settings.api_tokens()

    def authorized(request: Request) -> bool:
        return token_name(request, tokens) is not None

    def unauthorized() -> JSONResponse:
        return _unauthorized(runtime)

    async def freeze_gate(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        params, errors = _query(request, "environment", "service")
        if errors:
            return _unprocessable(errors)
        environment, service = params["environment"], params["service"] or None
        if not environment:
            return _unprocessable({"environment": "is required, e.g. ?environment=production"})
        if service is not None and not _NAME.fullmatch(service):
            return _unprocessable({"service": f"must be {SERVICE_NAME_RULE}"})
        try:
            decision = await runtime.freezes.gate(environment, service=service)
        except FreezeRefused as exc:
            return _unprocessable({exc.field or "environment": exc.message})
        except GateUnavailable as exc:
            return _unavailable(exc)
        if decision.frozen:
            return _frozen(decision)
        payload: dict[str, Any] = {"environment": decision.environment, "frozen": False}
        if decision.exemptions:
            payload["exemptions"] = [e.id for e in decision.exemptions]
        return JSONResponse(payload)

    async def record_deploy(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        try:
            raw = await _read_body(request)
        except _TooLarge:
            return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        body, problem = _parse_json(raw)
        if problem is not None:
            return _unprocessable({"body": problem})
        fields, errors = validate_deploy(body, runtime.freezes.environments)
        if errors:
            return _unprocessable(errors)
        key = request.headers.get("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            return _unprocessable({"Idempotency-Key": "must be 1-200 printable ASCII characters"})
        try:
            outcome = await runtime.deploys.record(
                environment=fields["environment"],
                service=fields["service"],
                version=fields["version"],
                actor=f"api:{fields['actor']}",
                url=fields.get("url"),
                idempotency_key=key,
            )
        except FreezeRefused as exc:
            field = "Idempotency-Key" if exc.field == "idempotency_key" else exc.field or "body"
            return _unprocessable({field: exc.message})
        except GateUnavailable as exc:
            return _unavailable(exc)
        if isinstance(outcome, GateDecision):
            return _frozen(outcome)
        if not outcome.replayed:
            await deploy_recorded(runtime.changes, outcome)  # a change, and its watch starts
        # CI never waits on Slack: the announcement was written to the outbox with the deploy.
        return JSONResponse(_deploy_json(outcome), status_code=201)

    async def list_deploys(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        params, errors = _query(request, "environment")
        if errors:
            return _unprocessable(errors)
        environment = params["environment"] or None
        if environment is not None and environment not in runtime.freezes.environments:
            return _unprocessable(
                {"environment": f"unknown environment; one of {', '.join(runtime.freezes.environments)}"}
            )
        deploys = await runtime.deploys.recent(environment)
        return JSONResponse(
            {
                "deploys": [
                    {
                        "environment": d.environment,
                        "service": d.service,
                        "version": d.version,
                        "actor": d.actor,
                        "at": d.at.isoformat(),
                        "url": d.url,
                    }
                    for d in deploys
                ]
            }
        )

    return [
        Route("/api/v1/freeze", freeze_gate, methods=["GET"]),
        Route("/api/v1/deploys", record_deploy, methods=["POST"]),
        Route("/api/v1/deploys", list_deploys, methods=["GET"]),
        *freeze_routes(runtime, lambda request: token_name(request, tokens), lambda: _unauthorized(runtime)),
    ]


def _deploy_json(deploy: RecordedDeploy) -> dict[str, Any]:
    info = deploy.info
    return {
        "id": deploy.id,
        "environment": info.environment,
        "service": info.service,
        "version": info.version,
        "actor": info.actor,
        "at": info.at.isoformat(),
        "url": info.url,
        "exemptions": [e.id for e in deploy.exemptions],
    }
