"""The `heroku` actions: roll an app back to its previous release, scale a process type.

Platform API v3 over httpx. Reads are retried (bounded, jittered); a rollback POST never is:
if it times out or answers 5xx we re-read the releases and report whether the rollback had
in fact happened, instead of creating a second rollback release. The rollback target is
fixed once, before the POST, and never recomputed (recomputing "the one before current"
after a rollback would roll back twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bot.actions import _outbound
from bot.actions.base import ActionContext, ActionOutcome
from bot.resilience import CallPolicy, CircuitOpen

__all__ = ["DEFAULT_API_URL", "HerokuRollbackStep", "HerokuScaleStep", "release_list"]

DEFAULT_API_URL = "https://api.heroku.com"
ACCEPT = "application/vnd.heroku+json; version=3"
WRITE_ONCE = CallPolicy(timeout=20.0, attempts=1, deadline=20.0)
SET_QUANTITY = CallPolicy(timeout=10.0, attempts=3, backoff=0.5, max_backoff=4.0, deadline=30.0)


class HerokuError(Exception):
    """Heroku answered with an error we should show as is (4xx), or something unexpected."""


@dataclass(frozen=True)
class Release:
    id: str
    version: int
    description: str
    status: str
    current: bool
    slug_id: str | None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Release:
        slug = data.get("slug") or {}
        return cls(
            id=str(data["id"]),
            version=int(data["version"]),
            description=str(data.get("description", "")),
            status=str(data.get("status", "succeeded")),
            current=bool(data.get("current", False)),
            slug_id=slug.get("id") if isinstance(slug, dict) else None,
        )

    @property
    def label(self) -> str:
        return f"v{self.version}" + (f" ({self.description})" if self.description else "")


class _Api:
    """The few Platform API calls we make, bound to one action run."""

    def __init__(self, ctx: ActionContext, client: httpx.AsyncClient, reads: CallPolicy) -> None:
        self.base = ctx.endpoints.get("heroku_api_url", DEFAULT_API_URL).rstrip("/")
        self.target = _outbound.target_of(self.base)
        self.token = ctx.secrets.get("heroku_api_token", "")
        self.ctx = ctx
        self.client = client
        self.reads = reads

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Accept": ACCEPT, "Authorization": f"Bearer {self.token}", **(extra or {})}

    async def call(
        self,
        method: str,
        path: str,
        *,
        policy: CallPolicy,
        idempotent: bool,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = await _outbound.request(
            self.client,
            method,
            self.base + path,
            target=self.target,
            breakers=self.ctx.breakers,
            policy=policy,
            idempotent=idempotent,
            headers=self._headers(headers),
            json_body=json_body,
        )
        if not response.is_success:
            raise HerokuError(
                f"Heroku answered {response.status_code} to {method} {path}: {_outbound.error_message(response)}"
            )
        return response.json()

    async def releases(self, app: str, newest: int = 10) -> list[Release]:
        """The newest releases, newest first (Range header: order=desc)."""
        data = await self.call(
            "GET",
            f"/apps/{app}/releases",
            policy=self.reads,
            idempotent=True,
            headers={"Range": f"version ..; order=desc, max={newest}"},
        )
        return sorted((Release.from_api(item) for item in data), key=lambda r: r.version, reverse=True)


async def release_list(ctx: ActionContext, app: str, *, newest: int, reads: CallPolicy) -> list[dict[str, Any]]:
    """The app's newest releases as Heroku sends them (newest first), for the change feed; raises
    HerokuError (4xx, no token) or what `_outbound.request` raises."""
    if not ctx.secrets.get("heroku_api_token"):
        raise HerokuError("HEROKU_API_TOKEN is not set, so guardrail cannot read Heroku releases")
    async with _outbound.client(reads.timeout) as client:
        data = await _Api(ctx, client, reads).call(
            "GET",
            f"/apps/{app}/releases",
            policy=reads,
            idempotent=True,
            headers={"Range": f"version ..; order=desc, max={newest}"},
        )
    if not isinstance(data, list):
        raise HerokuError(f"Heroku answered an unexpected body to GET /apps/{app}/releases")
    return [item for item in data if isinstance(item, dict)]


def _no_token(ctx: ActionContext) -> ActionOutcome | None:
    if not ctx.secrets.get("heroku_api_token"):
        return ActionOutcome(ok=False, summary="HEROKU_API_TOKEN is not set, so guardrail cannot call Heroku")
    return None


def _failure(exc: Exception) -> str:
    return str(exc) if isinstance(exc, HerokuError) else _outbound.describe_failure(exc)


def _current_and_previous(releases: list[Release]) -> tuple[Release | None, Release | None]:
    current = next((r for r in releases if r.current), releases[0] if releases else None)
    if current is None:
        return None, None
    previous = next((r for r in releases if r.version < current.version and r.status == "succeeded"), None)
    return current, previous


@dataclass(frozen=True)
class HerokuRollbackStep:
    """Roll `app` back to the release before the current one, or to a fixed release (undo / pinned)."""

    app: str
    target_release_id: str | None = None  # fixed target; None = the release before the current one
    target_label: str | None = None
    reads: CallPolicy = _outbound.READS
    write: CallPolicy = WRITE_ONCE

    def describe(self) -> str:
        if self.target_release_id:
            return f"Roll back Heroku app {self.app} to release {self.target_label or self.target_release_id}"
        return f"Roll back Heroku app {self.app} to the release before the current one"

    async def _plan(self, api: _Api) -> tuple[Release, Release]:
        releases = await api.releases(self.app)
        current, previous = _current_and_previous(releases)
        if current is None:
            raise HerokuError(f"{self.app} has no releases")
        if self.target_release_id:
            fixed = next((r for r in releases if r.id == self.target_release_id), None)
            if fixed is None:
                raise HerokuError(
                    f"release {self.target_label or self.target_release_id} is not among "
                    f"{self.app}'s last {len(releases)} releases"
                )
            return current, fixed
        if previous is None:
            raise HerokuError(f"{self.app} has no successful release before {current.label}")
        return current, previous

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        if (missing := _no_token(ctx)) is not None:
            return missing
        try:
            async with _outbound.client(self.reads.timeout) as client:
                current, target = await self._plan(_Api(ctx, client, self.reads))
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Cannot preview the rollback of {self.app}: {_failure(exc)}")
        return ActionOutcome(
            ok=True,
            summary=f"Would roll back {self.app} from {current.label} to {target.label}: "
            f'POST /apps/{self.app}/releases {{"release": "{target.id}"}}',
            details={
                "app": self.app,
                "current_release": current.id,
                "current_version": current.version,
                "target_release_id": target.id,
                "target_version": target.version,
            },
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        if (missing := _no_token(ctx)) is not None:
            return missing
        async with _outbound.client(max(self.reads.timeout, self.write.timeout)) as client:
            api = _Api(ctx, client, self.reads)
            try:
                current, target = await self._plan(api)
            except Exception as exc:
                return ActionOutcome(ok=False, summary=f"Did not roll back {self.app}: {_failure(exc)}")
            details: dict[str, Any] = {
                "app": self.app,
                "from_version": current.version,
                "to_version": target.version,
                "target_release_id": target.id,
            }
            if target.id == current.id or current.description == f"Rollback to v{target.version}":
                # A second press (or an undo pressed twice): already there, so nothing is sent.
                return ActionOutcome(
                    ok=True,
                    summary=f"{self.app} already runs {target.label} (current release {current.label}); nothing sent",
                    details=details,
                )
            remembered = {"app": self.app, "previous_release_id": current.id, "previous_version": current.version}
            await _outbound.say(ctx, f"Rolling {self.app} back from {current.label} to {target.label}")
            try:
                created = await api.call(
                    "POST",
                    f"/apps/{self.app}/releases",
                    policy=self.write,
                    idempotent=False,
                    json_body={"release": target.id},
                )
            except (HerokuError, CircuitOpen) as exc:
                return ActionOutcome(
                    ok=False, summary=f"Did not roll back {self.app}: {_failure(exc)}", details=details
                )
            except Exception as exc:
                # The POST may or may not have happened. Never send it again: look.
                return await self._after_uncertain_post(api, current, target, exc, details, remembered)
            try:
                new = Release.from_api(created)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # The POST was accepted but its answer is not a release: whether it rolled back is for the
                # releases list to say, and `remembered` must survive for the undo.
                odd = HerokuError(
                    f"Heroku accepted the rollback but answered an unexpected body ({type(exc).__name__})"
                )
                return await self._after_uncertain_post(api, current, target, odd, details, remembered)
            details["new_version"] = new.version
            return ActionOutcome(
                ok=True,
                summary=f"Rolled {self.app} back from {current.label} to {target.label} (new release v{new.version})",
                details=details,
                remembered=remembered,
            )

    async def _after_uncertain_post(
        self,
        api: _Api,
        current: Release,
        target: Release,
        exc: Exception,
        details: dict[str, Any],
        remembered: dict[str, Any],
    ) -> ActionOutcome:
        why = _failure(exc)
        details["post_error"] = why
        try:
            releases = await api.releases(self.app, newest=5)
        except Exception as reread:
            return ActionOutcome(
                ok=False,
                summary=f"Rollback of {self.app} is uncertain: {why}; re-reading the "
                f"releases failed too ({_failure(reread)}). Check Heroku before pressing again.",
                details=details,
            )
        newest = releases[0] if releases else current
        rolled = newest.version > current.version and (
            newest.description == f"Rollback to v{target.version}"
            or (newest.slug_id is not None and newest.slug_id == target.slug_id)
        )
        if rolled:
            details["new_version"] = newest.version
            return ActionOutcome(
                ok=True,
                summary=f"Rolled {self.app} back to {target.label} (new release "
                f"v{newest.version}); the API answered badly ({why}) but the release is there, "
                "so it was not sent again",
                details=details,
                remembered=remembered,
            )
        return ActionOutcome(
            ok=False,
            summary=f"Did not roll back {self.app}: {why}. The current release is "
            f"still {newest.label}; not retried automatically.",
            details=details,
        )


@dataclass(frozen=True)
class HerokuScaleStep:
    """Set a process type's dyno count, remembering the previous one for undo."""

    app: str
    process: str
    quantity: int
    reads: CallPolicy = _outbound.READS
    write: CallPolicy = SET_QUANTITY

    def describe(self) -> str:
        return f"Scale {self.app} {self.process} dynos to {self.quantity}"

    async def _current(self, api: _Api) -> int:
        formation = await api.call(
            "GET", f"/apps/{self.app}/formation/{self.process}", policy=self.reads, idempotent=True
        )
        return int(formation["quantity"])

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        if (missing := _no_token(ctx)) is not None:
            return missing
        try:
            async with _outbound.client(self.reads.timeout) as client:
                previous = await self._current(_Api(ctx, client, self.reads))
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Cannot preview scaling {self.app} {self.process}: {_failure(exc)}")
        return ActionOutcome(
            ok=True,
            summary=f"Would scale {self.app} {self.process} dynos from {previous} to "
            f"{self.quantity}: PATCH /apps/{self.app}/formation/{self.process} "
            f'{{"quantity": {self.quantity}}}',
            details={"app": self.app, "process": self.process, "current_quantity": previous, "quantity": self.quantity},
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        if (missing := _no_token(ctx)) is not None:
            return missing
        details: dict[str, Any] = {"app": self.app, "process": self.process, "quantity": self.quantity}
        try:
            async with _outbound.client(max(self.reads.timeout, self.write.timeout)) as client:
                api = _Api(ctx, client, self.reads)
                previous = await self._current(api)
                remembered = {"app": self.app, "process": self.process, "previous_quantity": previous}
                details["previous_quantity"] = previous
                if previous == self.quantity:
                    return ActionOutcome(
                        ok=True,
                        summary=f"{self.app} {self.process} already runs {self.quantity} dynos; nothing changed",
                        details=details,
                        remembered=remembered,
                    )
                await _outbound.say(ctx, f"Scaling {self.app} {self.process} from {previous} to {self.quantity}")
                # Setting an absolute quantity is idempotent, so this PATCH may be retried (bounded).
                await api.call(
                    "PATCH",
                    f"/apps/{self.app}/formation/{self.process}",
                    policy=self.write,
                    idempotent=True,
                    json_body={"quantity": self.quantity},
                )
        except Exception as exc:
            return ActionOutcome(
                ok=False, summary=f"Did not scale {self.app} {self.process}: {_failure(exc)}", details=details
            )
        return ActionOutcome(
            ok=True,
            summary=f"Scaled {self.app} {self.process} dynos from {previous} to {self.quantity}",
            details=details,
            remembered=remembered,
        )
