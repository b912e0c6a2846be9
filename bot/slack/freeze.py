"""`/freeze` in Slack: the command, the `/freeze new` form and break-glass buttons.
(Announcements are posted by the outbox: bot/slack/outbox.py.)"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp

from bot.resilience import CallPolicy, call_outbound
from bot.runtime import Runtime
from bot.services.freeze import grammar as grammar
from bot.services.freeze.models import FreezeRefused
from bot.slack import blocks, freeze_view
from bot.slack.failures import changed
from bot.slack.ids import Command
from bot.slack.payloads import ButtonClick, SlashCommand
from bot.slack.post_ack import after_ack
from bot.slack.reply import form_metadata

log = logging.getLogger(__name__)

SLACK_CALL = CallPolicy(timeout=10.0)
_BUTTON_ID = re.compile(r"[0-9]{1,9}")  # ASCII only ("²".isdigit() is True); 9 digits fit a PostgreSQL integer

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]


def parse_form(values: dict[str, Any], tz: ZoneInfo) -> tuple[dict[str, Any], dict[str, str]]:
    """The `/freeze new` state values → (environment, starts_at, ends_at, reason) and field errors."""

    def value(block: str) -> Any:
        return (values.get(block) or {}).get(block) or {}

    errors: dict[str, str] = {}
    environment = (value(freeze_view.FORM_ENVIRONMENT).get("selected_option") or {}).get("value")
    reason = str(value(freeze_view.FORM_REASON).get("value") or "").strip()
    if not reason:
        errors[freeze_view.FORM_REASON] = "Say why the window is needed."

    def moment(date_block: str, time_block: str) -> datetime | None:
        day, hhmm = value(date_block).get("selected_date"), value(time_block).get("selected_time")
        if not day:
            errors[date_block] = "Pick a date."
            return None
        if not hhmm:
            errors[time_block] = "Pick a time."
            return None
        try:
            return grammar.local_moment(str(day), str(hhmm), tz)
        except grammar.BadDate as exc:
            errors[date_block] = str(exc)[:150]
        except grammar.GrammarError as exc:
            errors[time_block] = str(exc)[:150]
        return None

    starts_at = moment(freeze_view.FORM_START_DATE, freeze_view.FORM_START_TIME)
    ends_at = moment(freeze_view.FORM_END_DATE, freeze_view.FORM_END_TIME)
    return {"environment": environment, "starts_at": starts_at, "ends_at": ends_at, "reason": reason}, errors


Say = Callable[..., Awaitable[None]]  # say(text, blocks=None): the ephemeral answer

_FIELD_BLOCKS = {
    "environment": freeze_view.FORM_ENVIRONMENT,
    "starts_at": freeze_view.FORM_START_DATE,
    "ends_at": freeze_view.FORM_END_TIME,
    "reason": freeze_view.FORM_REASON,
}


def register(app: AsyncApp, runtime: Runtime) -> None:
    freezes = runtime.freezes

    async def handle(command: SlashCommand, respond: Respond) -> None:
        tz = runtime.config.tz
        now = runtime.clock.now()

        async def say(text: str, rendered: list[blocks.Block] | None = None) -> None:
            await respond(
                text=text, blocks=rendered or [blocks.section(blocks.escape(text))], response_type="ephemeral"
            )

        try:
            request = grammar.parse(command.text, now=now, tz=tz)
        except grammar.GrammarError as exc:
            await say(f"{exc}\n{grammar.USAGE}")
            return
        if isinstance(request, grammar.OpenForm):
            # Outside the post-ack bound: the trigger_id lives 3 s and must not queue behind answers.
            try:
                await open_form(command)
            except Exception as exc:
                log.warning("could not open the /freeze new form: %s", exc)
                async with after_ack(app):
                    await say(
                        "I could not open the form just now; type the window instead, e.g. "
                        "`/freeze from tomorrow 09:00 until 12:00 Release`."
                    )
            return
        async with after_ack(app):
            await answer(request, command, say)

    async def answer(request: grammar.FreezeRequest, command: SlashCommand, say: Say) -> None:
        tz = runtime.config.tz
        now = runtime.clock.now()
        try:
            if isinstance(request, grammar.ListWindows):
                text, rendered = freeze_view.render_list(await freezes.upcoming(), runtime.config.freeze, tz, now)
                await say(text, rendered)
            elif isinstance(request, grammar.ShowStatus):
                text, rendered = freeze_view.render_status(await freezes.status(request.environment), tz)
                await say(text, rendered)
            elif isinstance(request, grammar.CreateWindow):
                window = await freezes.create(
                    starts_at=request.starts_at,
                    ends_at=request.ends_at,
                    environment=request.environment,
                    reason=request.reason,
                    actor=command.user_id,
                )
                changed(f"freeze #{window.id} was created")
                await say(
                    f"Created freeze #{window.id} on {window.environment}.",
                    [blocks.section(f"Created {freeze_view.window_line(window, tz, now)}")],
                )
            elif isinstance(request, grammar.CancelWindow):
                window = await freezes.cancel(request.window_id, actor=command.user_id, require_responder=True)
                changed(f"freeze #{window.id} was cancelled")
                await say(f"Cancelled freeze #{window.id}.")
            elif isinstance(request, grammar.ExtendWindow):
                window = await freezes.extend(
                    request.window_id, request.by, actor=command.user_id, require_responder=True
                )
                changed(f"freeze #{window.id} was extended")
                await say(f"Freeze #{window.id} now ends {blocks.local_time(window.ends_at, tz)}.")
            elif isinstance(request, grammar.RequestExemption):
                exemption = await freezes.request_exemption(
                    request.window_id,
                    service=request.service,
                    duration=request.duration,
                    reason=request.reason,
                    actor=command.user_id,
                )
                changed(f"exemption #{exemption.id} was requested")
                await say(
                    f"Asked for exemption #{exemption.id}; another responder must approve it in "
                    f"<#{runtime.config.channels.deploys}>."
                )
            elif isinstance(request, grammar.ShowUsage):
                await say(request.message)
        except FreezeRefused as exc:
            await say(freeze_view.refused(exc))

    async def open_form(command: SlashCommand) -> None:
        tz = runtime.config.tz
        view = freeze_view.new_form(freezes.environments, runtime.clock.now().astimezone(tz).date().isoformat(), tz)
        view["private_metadata"] = form_metadata(command.channel_id)  # where to tell the person if saving fails
        await call_outbound(
            "slack:views.open",
            lambda: app.client.views_open(trigger_id=command.trigger_id or "", view=view),
            policy=SLACK_CALL,
            breakers=runtime.breakers,
        )

    @app.command(Command.FREEZE.value)
    async def freeze_command(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        await handle(SlashCommand.parse(body), respond)

    @app.view(freeze_view.NEW_FORM)
    async def freeze_form(ack: Ack, body: dict[str, Any]) -> None:
        values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        user_id = str((body.get("user") or {}).get("id", ""))
        fields, errors = parse_form(values if isinstance(values, dict) else {}, runtime.config.tz)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        try:
            freezes.validate(
                starts_at=fields["starts_at"],
                ends_at=fields["ends_at"],
                environment=fields["environment"],
                reason=fields["reason"],
            )
        except FreezeRefused as exc:
            block = _FIELD_BLOCKS.get(exc.field or "", freeze_view.FORM_END_TIME)
            await ack(response_action="errors", errors={block: exc.message[:150]})
            return
        # Slack gives a view submission 3 s: answer first, then create and announce (which may be slow).
        await ack()
        try:
            await freezes.create(
                starts_at=fields["starts_at"],
                ends_at=fields["ends_at"],
                environment=fields["environment"],
                reason=fields["reason"],
                actor=user_id,
            )
        except FreezeRefused as exc:  # only if the start passed between validating and creating
            log.warning("the /freeze new form of %s was valid but creating it was refused: %s", user_id, exc.message)

    async def decide(ack: Ack, body: dict[str, Any], respond: Respond, approve: bool) -> None:
        await ack()
        click = ButtonClick.parse(body)
        if not _BUTTON_ID.fullmatch(click.value):
            await respond(
                text="That button does not name an exemption.", response_type="ephemeral", replace_original=False
            )
            return
        try:
            exemption = await freezes.decide_exemption(int(click.value), approve=approve, actor=click.user_id)
        except FreezeRefused as exc:
            await respond(text=freeze_view.refused(exc), response_type="ephemeral", replace_original=False)
            return
        verdict = "approved" if approve else "refused"
        await respond(
            replace_original=True,
            text=f"Exemption #{exemption.id} ({exemption.service}) {verdict} by <@{click.user_id}>.",
            blocks=[
                blocks.section(
                    f"Exemption #{exemption.id} for `{blocks.escape(exemption.service)}` "
                    f"(freeze #{exemption.window_id}) was *{verdict}* by "
                    f"<@{click.user_id}>."
                )
            ],
        )

    @app.action(freeze_view.APPROVE_EXEMPTION)
    async def approve_exemption(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await decide(ack, body, respond, True)

    @app.action(freeze_view.REFUSE_EXEMPTION)
    async def refuse_exemption(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await decide(ack, body, respond, False)
