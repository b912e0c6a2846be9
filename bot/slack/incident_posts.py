"""What the incident feature posts about a run outside a click: the playbook message brought up to
date and a line in its thread. The handlers in `incidents.py` use it after a click; `SlackRunPoster`
(built with the other Slack ports in `ports.py`) when a run turns out interrupted or its result lands
late, on whichever runtime swept or retried (server or CLI alike).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.incidents import Incident, InterruptedRun, PlaybookView, StepResult
from bot.slack import incidents_view as view

log = logging.getLogger(__name__)


async def best_effort(what: str, incident_id: int, call: Awaitable[object]) -> None:
    """A Slack message about a run: a timeout or a dropped connection is logged, never raised,
    so a claimed step always executes and always records how it ended."""
    try:
        await call
    except Exception:
        log.warning("could not %s for incident %s", what, incident_id, exc_info=True)


async def update_playbook(client: AsyncWebClient, playbook: PlaybookView, tz: ZoneInfo) -> None:
    """Show `playbook` in the incident's playbook message (if it was posted)."""
    incident = playbook.incident
    if not incident.channel_id or not incident.playbook_ts or not incident.playbook:
        return
    text, rendered = view.playbook(playbook, tz)
    try:
        await client.chat_update(channel=incident.channel_id, ts=incident.playbook_ts, text=text, blocks=rendered)
    except SlackApiError as exc:
        log.warning("could not update the playbook message of incident %s: %s", incident.id, exc)


async def post_in_thread(client: AsyncWebClient, incident: Incident, text: str) -> None:
    """Post in the playbook's thread, or in the channel itself while the playbook has no ts yet."""
    if not incident.channel_id:
        log.warning("incident %s has no channel; not posted: %s", incident.id, text[:200])
        return
    try:
        await client.chat_postMessage(channel=incident.channel_id, thread_ts=incident.playbook_ts, text=text)
    except SlackApiError as exc:
        log.warning("could not post to incident %s's thread: %s", incident.id, exc)


class SlackRunPoster:
    """`bot.services.incidents.RunPoster` for Slack: the playbook brought up to date, then a line
    in its thread; each logged, never raised, when Slack does not take it."""

    def __init__(self, client: AsyncWebClient, tz: ZoneInfo) -> None:
        self._client = client
        self._tz = tz

    async def post_interrupted(self, run: InterruptedRun, playbook: PlaybookView | None) -> None:
        incident = playbook.incident if playbook is not None else run.incident
        if playbook is not None:
            await best_effort(
                "show the step interrupted", incident.id, update_playbook(self._client, playbook, self._tz)
            )
        await best_effort(
            "post the interruption",
            incident.id,
            post_in_thread(self._client, incident, view.interrupted(run, self._tz)),
        )

    async def post_late_result(self, result: StepResult, playbook: PlaybookView | None) -> None:
        incident = playbook.incident if playbook is not None else result.run.incident
        if playbook is not None:
            await best_effort(
                "show the step's late result", incident.id, update_playbook(self._client, playbook, self._tz)
            )
        await best_effort(
            "post the step's late result", incident.id, post_in_thread(self._client, incident, view.finished(result))
        )
