"""`http`: healthy when the response has the expected status (and body text or JSON field)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.checks.base import safe_target
from bot.checks.probe import Unhealthy, short
from bot.config import ErrorRate, HttpCheck

_MISSING = object()


def _field(document: Any, dotted: str) -> Any:
    value = document
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _same(actual: Any, expected: str | int | float | bool) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected or str(actual).lower() == str(expected).lower()
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(actual) == float(expected)
    return str(actual) == str(expected)


def _error_rate(document: Any, limit: ErrorRate) -> str:
    """ "error rate 0.01"; raises Unhealthy above the limit or when the field is not a number."""
    value = _field(document, limit.field)
    if value is _MISSING:
        raise Unhealthy(f"JSON has no {limit.field}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unhealthy(short(f"{limit.field} is {json.dumps(value)}, not a number"))
    if value > limit.max:
        raise Unhealthy(f"error rate {value:g} > {limit.max:g} ({limit.field})")
    return f"error rate {value:g}"


class HttpProbe:
    """One request per attempt through a client shared by all http probes (no retries)."""

    def __init__(self, check: HttpCheck, client: httpx.AsyncClient) -> None:
        self.check = check
        self._client = client
        self._target = safe_target(check.url)

    @property
    def target(self) -> str:
        return self._target

    async def __call__(self) -> str:
        check = self.check
        try:
            response = await self._client.request(check.method, check.url, headers=check.headers)
        except httpx.ConnectError:
            raise Unhealthy("connection refused or unreachable") from None
        except httpx.HTTPError as exc:
            raise Unhealthy(short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)) from None
        if response.status_code != check.expect_status:
            raise Unhealthy(f"HTTP {response.status_code}, expected {check.expect_status}")
        if check.body_contains is not None and check.body_contains not in response.text:
            raise Unhealthy(f"HTTP {response.status_code} but the body lacks {short(check.body_contains, 40)!r}")
        document: Any = _MISSING
        if check.json_field is not None or check.error_rate is not None:
            try:
                document = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise Unhealthy(f"HTTP {response.status_code} but the body is not JSON") from None
        if check.json_field is not None:
            value = _field(document, check.json_field)
            if value is _MISSING:
                raise Unhealthy(f"JSON has no {check.json_field}")
            if check.json_equals is not None and not _same(value, check.json_equals):
                raise Unhealthy(
                    short(f"{check.json_field} is {json.dumps(value)}, expected {json.dumps(check.json_equals)}")
                )
        if check.error_rate is not None:
            return f"HTTP {response.status_code}, {_error_rate(document, check.error_rate)}"
        return f"HTTP {response.status_code}"

    async def aclose(self) -> None:
        return None  # the client is shared and closed by its owner
