"""The `checks` action (the verify step): run the named services' health checks; fails if any is down."""

from __future__ import annotations

from dataclasses import dataclass

from bot.actions.base import ActionContext, ActionOutcome
from bot.checks.base import CheckResult, Status

__all__ = ["ChecksStep"]


def _line(result: CheckResult) -> str:
    latency = f" ({result.latency_ms:.0f} ms)" if result.latency_ms is not None else ""
    reason = f": {result.reason}" if result.reason else ""
    return f"{result.service} {result.status.value}{latency}{reason}"


@dataclass(frozen=True)
class ChecksStep:
    """Health checks of named services; read-only, so its preview runs them too."""

    services: tuple[str, ...]

    def describe(self) -> str:
        return f"Run health checks of {', '.join(self.services)}"

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        outcome = await self.run(ctx)
        return ActionOutcome(
            ok=outcome.ok, summary=f"Checks change nothing, so they ran: {outcome.summary}", details=outcome.details
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        if ctx.prober is None:
            return ActionOutcome(ok=False, summary="Health checks are not available in this process")
        try:
            results = await ctx.prober.probe(list(self.services))
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Health checks could not run: {type(exc).__name__}: {exc}")
        by_name = {r.service: r for r in results}
        lines: list[str] = []
        failed: list[str] = []
        for name in self.services:
            result = by_name.get(name)
            if result is None:
                lines.append(f"{name}: no result")
                failed.append(name)
                continue
            lines.append(_line(result))
            if result.status is Status.DOWN:
                failed.append(name)
        details = {
            "results": {name: (by_name[name].status.value if name in by_name else "missing") for name in self.services},
            "lines": lines,
        }
        if failed:
            return ActionOutcome(ok=False, summary=f"Down: {', '.join(failed)} — " + "; ".join(lines), details=details)
        return ActionOutcome(ok=True, summary="All healthy — " + "; ".join(lines), details=details)
