"""The `http` action: call an endpoint (a deploy hook, a feature-flag service…); success is any 2xx.

Retried only when the step declares the call idempotent with `retry: {attempts, backoff}`;
otherwise exactly one attempt, whatever happens — a rollback hook called twice is two rollbacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.actions import _outbound
from bot.actions._masking import mask_headers, mask_text, mask_value, shown_url
from bot.actions.base import ActionContext, ActionOutcome
from bot.config import HttpAction
from bot.resilience import CallPolicy

__all__ = ["HttpStep"]

_FIRST_LINE = 120  # characters of an answer's first line kept in the details (masked)


def _body_phrase(body: Any) -> str:
    """' for service api' for a flat JSON object; ' with JSON {...}' for anything else (secrets masked)."""
    if body is None:
        return ""
    body = mask_value(body)
    if isinstance(body, dict) and body and all(isinstance(v, str | int | float | bool) for v in body.values()):
        return " for " + ", ".join(
            f"{key} {value if isinstance(value, str) else json.dumps(value)}" for key, value in body.items()
        )
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
        policy = CallPolicy(
            timeout=timeout,
            attempts=attempts,
            backoff=max(backoff, 0.001),
            max_backoff=max(backoff * 8, 0.001),
            deadline=timeout * attempts + max(backoff * 8, 0.001) * (attempts - 1) + 1,
        )
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
        # Header values are never kept (bar Content-Type and the like): custom headers carry credentials.
        return {
            "method": self.config.method,
            "url": self.url,
            "headers": mask_headers(self.config.headers),
            "json": mask_value(self.config.json_body),
            "timeout_s": self.policy.timeout,
            "attempts": self.policy.attempts if self.idempotent else 1,
        }

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        # Nothing is sent: even a GET hook may have side effects we cannot know about.
        retries = f", up to {self.policy.attempts} attempts" if self.idempotent else ", one attempt"
        return ActionOutcome(
            ok=True,
            summary=f"Would send {self.describe()} (timeout {self.policy.timeout:g}s{retries})",
            details=self._request_details(),
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        target = _outbound.target_of(self.config.url)
        shown = self.url
        details = self._request_details()
        try:
            async with _outbound.client(self.policy.timeout) as client:
                response = await _outbound.request(
                    client,
                    self.config.method,
                    self.config.url,
                    target=target,
                    breakers=ctx.breakers,
                    policy=self.policy,
                    idempotent=self.idempotent,
                    headers=self.config.headers,
                    json_body=self.config.json_body,
                )
        except Exception as exc:
            return ActionOutcome(
                ok=False,
                summary=f"{self.config.method} {shown} failed: {mask_text(_outbound.describe_failure(exc))}",
                details=details,
            )
        details["status"] = response.status_code
        # Never the body itself: a hook may answer with the token it was sent, or a new one.
        first_line = mask_text(next(iter(response.text.strip().splitlines()), ""))
        if first_line:
            details["response_first_line"] = first_line[:_FIRST_LINE] + ("…" if len(first_line) > _FIRST_LINE else "")
        if response.is_success:
            return ActionOutcome(
                ok=True,
                summary=f"{self.config.method} {shown} → {response.status_code} {response.reason_phrase}",
                details=details,
            )
        return ActionOutcome(
            ok=False,
            summary=f"{self.config.method} {shown} answered "
            f"{response.status_code}: {mask_text(_outbound.error_message(response))}",
            details=details,
        )
