"""Block Kit for the rollback check: the red message for the deploys channel, the "last checked" line."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.services.rollback_check import RollbackCheckReport
from bot.slack import blocks
from bot.slack.health_view import last_checked_line

__all__ = ["last_checked_line", "render_red"]


def render_red(report: RollbackCheckReport, tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    """The deploys-channel message: which rollback paths cannot run, why, and what to fix."""
    text = f"Rollback check: {report.headline}"
    rendered: list[blocks.Block] = [
        blocks.section(
            f":red_circle: *{blocks.escape(report.headline)}* — a rollback "
            "that cannot run is found now, not during the incident"
        )
    ]
    for result in report.red[:45]:
        which = "undo of " if result.path == "undo" else ""
        line = (
            f"*{blocks.escape(result.playbook)} / {which}{blocks.escape(result.label)}* "
            f"(`{blocks.escape(result.step)}`)\n{blocks.escape(blocks.truncate(result.summary, 400))}"
        )
        if result.fix:
            line += f"\n:wrench: {blocks.escape(result.fix)}"
        rendered.append(blocks.section(line))
    rendered.append(
        blocks.context(
            f"Checked {blocks.slack_date(report.checked_at, tz)} by previews only: nothing "
            "was changed. Run `guardrail rollback-check` after fixing."
        )
    )
    return text, rendered[:50]
