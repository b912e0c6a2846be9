"""How actions talk HTTP: every request goes through `bot.resilience.call_outbound`.

One helper so each provider module only says *what* to send. A 5xx or 429 answer is raised
as `ProviderUnavailable` inside the guarded call, so the breaker counts it and (only for
idempotent calls) a later attempt may be made; any other answer is returned as-is for the
caller to interpret. httpx itself never retries (its transports default to retries=0), so
the attempts counted here are the attempts made.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.actions.base import ActionContext
from bot.resilience import Breakers, CallPolicy, CircuitOpen, OutboundTimeout, call_outbound

log = logging.getLogger(__name__)

__all__ = [
    "READS",
    "ProviderUnavailable",
    "client",
    "describe_failure",
    "error_message",
    "request",
    "say",
    "target_of",
]

READS = CallPolicy(timeout=10.0, attempts=3, backoff=0.5, max_backoff=4.0, deadline=30.0)
"""Read-only calls (GET) are idempotent: a few jittered attempts within 30 s."""


class ProviderUnavailable(Exception):
    """The provider answered 5xx or 429: it may work later, and it counts against its breaker."""

    def __init__(self, target: str, response: httpx.Response) -> None:
        super().__init__(f"{target} answered {response.status_code}: {error_message(response)}")
        self.response = response


def target_of(url: str) -> str:
    """The breaker key for a URL: one breaker per scheme://host:port (never the userinfo: it may hold a password)."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def error_message(response: httpx.Response) -> str:
    """The human part of an error answer (Heroku `message`, Kubernetes Status `message`), else the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = response.text.strip().replace("\n", " ")
    return (text[:200] + "…") if len(text) > 200 else (text or response.reason_phrase)


def _retry_worthwhile(exc: BaseException) -> bool:
    return isinstance(exc, ProviderUnavailable | OutboundTimeout | httpx.TransportError)


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    target: str,
    breakers: Breakers,
    policy: CallPolicy,
    idempotent: bool,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    content: bytes | None = None,
) -> httpx.Response:
    """Send one logical request under `policy`; raises ProviderUnavailable, OutboundTimeout, CircuitOpen or
    httpx.TransportError when no usable answer came back."""

    async def once() -> httpx.Response:
        response = await client.request(method, url, headers=dict(headers or {}), json=json_body, content=content)
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(target, response)
        return response

    return await call_outbound(
        target, once, policy=policy, breakers=breakers, idempotent=idempotent, retry_on=_retry_worthwhile
    )


def describe_failure(exc: BaseException) -> str:
    """One line for the playbook message saying why a call produced no usable answer."""
    if isinstance(exc, ProviderUnavailable | OutboundTimeout | CircuitOpen):
        return str(exc)
    if isinstance(exc, httpx.TransportError):
        try:
            where = exc.request.url.host
        except RuntimeError:
            where = "the provider"
        return f"could not reach {where}: {type(exc).__name__}" + (f" ({exc})" if str(exc) else "")
    return f"{type(exc).__name__}: {exc}"


@functools.cache
def _default_tls() -> ssl.SSLContext:
    # Building a verifying context loads the CA bundle (~15 ms); do it once, not per action run.
    return httpx.create_ssl_context()


def client(timeout: float, *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """An httpx client whose own timeout backs up the policy's (so sockets are closed too), without retries."""
    tls = _default_tls() if verify is True else verify
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout + 1.0), transport=httpx.AsyncHTTPTransport(retries=0, verify=tls)
    )


async def say(ctx: ActionContext, line: str) -> None:
    """Post a progress line; losing one (Slack down) must never fail or abort the action itself."""
    try:
        await ctx.progress(line)
    except Exception:
        log.warning("progress line for step %s not delivered: %s", ctx.step_id, line, exc_info=True)
