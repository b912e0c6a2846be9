"""The change watch in Slack: edit the watch message as rounds come in, raise the alarm in its
thread, and the alarm's buttons — [Roll back vN], [Declare incident], [Not the deploy], [Cancel]."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Runtime
from bot.services.changes import Change, RollbackRefused, RollbackStarted, WatchEvents, WatchRound, WatchVerdict
from bot.services.incidents import NeedsConfirmation, Refusal, StepRequest
from bot.slack import changes_view as view
from bot.slack import incidents_view
from bot.slack.blocks import Block
from bot.slack.failures import changed
from bot.slack.incidents import DeclareArgs, IncidentFlows, db_int
from bot.slack.payloads import ButtonClick, json_value

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]
Outcome = TypeVar("Outcome")
Outcome_co = TypeVar("Outcome_co", covariant=True)
EDITS_AT_ONCE = 8  # watch-message edits in flight (the message only changes once a minute or on a new status)


def parse_change_id(value: str) -> int | None:
    parsed = json_value(value)
    change_id = parsed.get("c") if isinstance(parsed, dict) else None
    return change_id if isinstance(change_id, int) and db_int(change_id, least=1) else None


class ChangeAction(Protocol[Outcome_co]):
    """What a button asks of the change service: `dismiss` or `cancel_countdown`."""

    def __call__(self, change_id: int, *, actor: str) -> Awaitable[Outcome_co | RollbackRefused]: ...


class ChangeHandlers:
    """The change watch's Slack side: it keeps each watch message in step with the rounds, raises the
    alarm in its thread, and answers the alarm's buttons (parse → change service → `changes_view`).
    `register` wires them to Bolt and to the service's events."""

    def __init__(self, app: AsyncApp, runtime: Runtime, flows: IncidentFlows) -> None:
        self.app = app
        self.runtime = runtime
        self.flows = flows
        self.changes = runtime.changes
        self.config = runtime.config
        self.shown: dict[int, list[Block]] = {}  # what each watch message shows now (edit only when it changes)
        self.edits = asyncio.Semaphore(EDITS_AT_ONCE)

    # -- the watch message and the alarm, as the service reports rounds and verdicts

    async def on_events(self, events: WatchEvents) -> None:
        # Alarms first: fifty progress edits must not hold back the one message that matters.
        for verdict in events.verdicts:
            text, rendered = view.verdict_message(verdict)
            await self.edit(verdict.change.id, text, rendered)
            if not verdict.healthy:
                await self.raise_alarm(verdict)
        for started in events.rollbacks:  # automatic, after the countdown
            await self.start_rollback(self.app.client, started, _poster(self.app.client, self.config.channels.deploys))
        await asyncio.gather(*(self.progress(r) for r in events.rounds))

    async def progress(self, round_: WatchRound) -> None:
        async with self.edits:
            await self.edit(round_.change.id, *view.progress(round_))

    async def message_of(self, change_id: int) -> tuple[str, str] | None:
        where = await self.changes.message_of(change_id)
        if where is None:
            await self.runtime.outbox.settle()  # the start message may still be on its way
            where = await self.changes.message_of(change_id)
        return where

    async def edit(self, change_id: int, text: str, rendered: list[Block]) -> None:
        if self.shown.get(change_id) == rendered:
            return
        where = await self.message_of(change_id)
        if where is None:
            return
        try:
            await self.app.client.chat_update(channel=where[0], ts=where[1], text=text, blocks=rendered)
            self.shown[change_id] = rendered
        except Exception as exc:  # the next round edits again
            log.warning("could not edit the watch message of change %s: %s", change_id, exc)

    async def raise_alarm(self, verdict: WatchVerdict) -> None:
        """The loud thread reply (also shown in the channel); the alerts post goes through the outbox."""
        text, rendered = view.alarm(verdict, self.config.tz, can_roll_back=self.config.rollback_step() is not None)
        where = await self.message_of(verdict.change.id)
        client = self.app.client
        try:
            if where is not None:
                await client.chat_postMessage(
                    channel=where[0], thread_ts=where[1], reply_broadcast=True, text=text, blocks=rendered
                )
            else:
                await client.chat_postMessage(channel=self.config.channels.deploys, text=text, blocks=rendered)
        except Exception as exc:
            log.warning(
                "could not post the alarm about change %s in the deploys channel (the alerts channel "
                "still gets it): %s",
                verdict.change.id,
                exc,
            )

    async def in_thread(self, change: Change, text: str) -> None:
        where = await self.changes.message_of(change.id)
        try:
            await self.app.client.chat_postMessage(
                channel=where[0] if where else self.config.channels.deploys,
                thread_ts=where[1] if where else None,
                text=text,
            )
        except Exception as exc:
            log.warning("could not post in the thread of change %s: %s", change.id, exc)

    async def start_rollback(self, client: AsyncWebClient, started: RollbackStarted, respond: Respond) -> None:
        """The incident declared for the rollback gets its channel; then its rollback step runs through
        the playbook's own claim (confirmation, freeze override, audit, exactly once)."""
        changed(f"incident #{started.incident.id} was declared to roll back {started.change.version}")
        await self.flows.open_channel(client, respond, started.incident)
        incident = await self.runtime.incidents.get(started.incident.id) or started.incident
        await self.in_thread(started.change, view.rollback_started(started, incident.channel_id))
        request = StepRequest(
            incident_id=incident.id,
            step_id=started.step_id,
            actor=started.actor,
            seen_attempt=0,
            automatic=started.automatic,
        )
        decision = await self.runtime.incidents.steps.claim(request)
        if isinstance(decision, Refusal):
            await respond(response_type="ephemeral", replace_original=False, text=incidents_view.refusal(decision))
            return
        if isinstance(decision, NeedsConfirmation):
            if started.automatic:
                question = incidents_view.confirmation_question(decision)
                await self.in_thread(started.change, view.automatic_needs_a_person(question))
                return
            text, rendered = incidents_view.confirmation(decision)
            await respond(response_type="ephemeral", replace_original=False, text=text, blocks=rendered)
            return
        await self.flows.run_claimed(client, decision)

    # -- the alarm's buttons

    async def clicked_change(self, body: dict[str, Any], respond: Respond) -> tuple[ButtonClick, int] | None:
        """The click and the change its button names; None, once the clicker is told, if that is damaged."""
        click = ButtonClick.parse(body)
        change_id = parse_change_id(click.value)
        if change_id is None:
            await damaged(respond)
            return None
        return click, change_id

    async def rollback_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        await ack()
        clicked = await self.clicked_change(body, respond)
        if clicked is None:
            return
        click, change_id = clicked
        with self.runtime.steps_in_flight.admit() as admitted:
            if not admitted:
                await respond(
                    response_type="ephemeral",
                    replace_original=False,
                    text="guardrail is restarting and did not start the rollback; click again in a moment.",
                )
                return
            outcome = await self.changes.claim_rollback(change_id, actor=click.user_id)
            if isinstance(outcome, RollbackRefused):
                await refused(respond, outcome)
                return
            await self.start_rollback(client, outcome, respond)

    async def declare_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        await ack()
        clicked = await self.clicked_change(body, respond)
        if clicked is None:
            return
        click, change_id = clicked
        change = await self.changes.get(change_id)
        if change is None:
            await damaged(respond)
            return
        found = self.config.rollback_step()
        title = f"{change.alert_service or change.service} bad after {change.version}"
        playbook = found[0].name if found else None
        await self.flows.declare(client, respond, click.user_id, click.channel_id, DeclareArgs(title, None, playbook))

    async def not_the_deploy(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await self.settle_alarm(ack, body, respond, self.changes.dismiss, view.dismissed)

    async def cancel_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await self.settle_alarm(ack, body, respond, self.changes.cancel_countdown, view.cancelled)

    async def settle_alarm(
        self,
        ack: Ack,
        body: dict[str, Any],
        respond: Respond,
        act: ChangeAction[Outcome],
        announce: Callable[[Outcome], str],
    ) -> None:
        """[Not the deploy] and [Cancel]: the service records the click, the channel hears who did it."""
        await ack()
        clicked = await self.clicked_change(body, respond)
        if clicked is None:
            return
        click, change_id = clicked
        outcome = await act(change_id, actor=click.user_id)
        if isinstance(outcome, RollbackRefused):
            await refused(respond, outcome)
            return
        await respond(response_type="in_channel", replace_original=False, text=announce(outcome))


async def refused(respond: Respond, outcome: RollbackRefused) -> None:
    await respond(response_type="ephemeral", replace_original=False, text=view.refusal(outcome))


async def damaged(respond: Respond) -> None:
    await respond(response_type="ephemeral", replace_original=False, text="That button's data is damaged.")


def register(app: AsyncApp, runtime: Runtime, flows: IncidentFlows) -> None:
    handlers = ChangeHandlers(app, runtime, flows)
    runtime.changes.on_events(handlers.on_events)
    app.action(view.ChangeActionId.ROLLBACK.value)(handlers.rollback_clicked)
    app.action(view.ChangeActionId.DECLARE.value)(handlers.declare_clicked)
    app.action(view.ChangeActionId.NOT_THE_DEPLOY.value)(handlers.not_the_deploy)
    app.action(view.ChangeActionId.CANCEL_AUTO.value)(handlers.cancel_clicked)


def _poster(client: AsyncWebClient, channel: str) -> Respond:
    """A `respond` for work nobody clicked (the automatic rollback): it posts in `channel`."""

    async def post(text: str = "", blocks: list[Any] | None = None, **_: Any) -> bool:
        try:
            await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except Exception as exc:
            log.warning("could not post to %s: %s", channel, exc)
            return False
        return True

    return post
