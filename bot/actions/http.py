"""The `http` action: call an endpoint (a deploy hook, a feature-flag service…); success is any 2xx.

Retried only when the step declares the call idempotent with `retry: {attempts, backoff}`;
otherwise exactly one attempt, whatever happens — a rollback hook called twice is two rollbacks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.actions import _outbound
from bot.actions.base import ActionContext, ActionOutcome
from bot.config import HttpAction
from bot.resilience import CallPolicy

__all__ = ["HttpStep"]

_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}


_SECRET_PARAM = re.compile(r"token|key|secret|password|passwd|signature|sig|auth", re.IGNORECASE)


def shown_url(url: str) -> str:
    """The URL as people may see it (confirm dialog, thread, audit log): password and secret-looking
    query values replaced by ***, since ${VAR} placeholders often put a hook's token there."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _body_phrase(body: Any) -> str:
    """' for service api' for a flat JSON object; ' with JSON {...}' for anything else."""
    if body is None:
        return ""
    if isinstance(body, dict) and body and all(isinstance(v, str | int | float | bool) for v in body.values()):
        return " for " + ", ".join(f"{key} {value if isinstance(value, str) else json.dumps(value)}"
                                   for key, value in body.items())
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return f" with JSON {text[:120]}{'…' if len(text) > 120 else ''}"


@dataclass(frozen=True)
class HttpStep:
    """One HTTP request, described exactly as it will be sent."""

    config: HttpAction
    policy: CallPolicy = field(init=False)

    def __post_init__(self) -> None:
        timeout = self.config.timeout.total_seconds()
        retry = self.config.retry
        attempts = retry.attempts if retry else 1
        backoff = retry.backoff.total_seconds() if retry else 0.5
        policy = CallPolicy(timeout=timeout, attempts=attempts, backoff=max(backoff, 0.001),
                            max_backoff=max(backoff * 8, 0.001),
                            deadline=timeout * attempts + max(backoff * 8, 0.001) * (attempts - 1) + 1)
        object.__setattr__(self, "policy", policy)

    @property
    def url(self) -> str:
        """The URL as shown to people (secrets masked); the request itself uses the real one."""
        return shown_url(self.config.url)

    @property
    def idempotent(self) -> bool:
        return self.config.retry is not None

    def describe(self) -> str:
        return f"{self.config.method} {self.url}{_body_phrase(self.config.json_body)}"

    def _request_details(self) -> dict[str, Any]:
        headers = {k: ("***" if k.lower() in _SECRET_HEADERS or _SECRET_PARAM.search(k) else v)
                   for k, v in self.config.headers.items()}
        return {"method": self.config.method, "url": self.url, "headers": headers,
                "json": self.config.json_body, "timeout_s": self.policy.timeout,
                "attempts": self.policy.attempts if self.idempotent else 1}

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        # Nothing is sent: even a GET hook may have side effects we cannot know about.
        retries = f", up to {self.policy.attempts} attempts" if self.idempotent else ", one attempt"
        return ActionOutcome(ok=True, summary=f"Would send {self.describe()} (timeout "
                             f"{self.policy.timeout:g}s{retries})", details=self._request_details())

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        target = _outbound.target_of(self.config.url)
        shown = self.url
        details = self._request_details()
        try:
            async with _outbound.client(self.policy.timeout) as client:
                response = await _outbound.request(
                    client, self.config.method, self.config.url, target=target, breakers=ctx.breakers,
                    policy=self.policy, idempotent=self.idempotent, headers=self.config.headers,
                    json_body=self.config.json_body)
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"{self.config.method} {shown} failed: "
                                 f"{_outbound.describe_failure(exc)}", details=details)
        details["status"] = response.status_code
        details["response"] = response.text[:2000]
        if response.is_success:
            return ActionOutcome(ok=True, summary=f"{self.config.method} {shown} → "
                                 f"{response.status_code} {response.reason_phrase}", details=details)
        return ActionOutcome(ok=False, summary=f"{self.config.method} {shown} answered "
                             f"{response.status_code}: {_outbound.error_message(response)}", details=details)
