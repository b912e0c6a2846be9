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


# What `/freeze` answers in words; `OpenForm` opens the form instead.
Answerable = (
    grammar.CreateWindow
    | grammar.ListWindows
    | grammar.ShowStatus
    | grammar.CancelWindow
    | grammar.ExtendWindow
    | grammar.RequestExemption
    | grammar.ShowUsage
)
# An answer: its text, and its blocks (None: the text alone, escaped, in one section).
Reply = tuple[str, list[blocks.Block] | None]

_FIELD_BLOCKS = {
    "environment": freeze_view.FORM_ENVIRONMENT,
    "starts_at": freeze_view.FORM_START_DATE,
    "ends_at": freeze_view.FORM_END_TIME,
    "reason": freeze_view.FORM_REASON,
}


async def say(respond: Respond, text: str, rendered: list[blocks.Block] | None = None) -> None:
    """The ephemeral answer to `/freeze`."""
    await respond(text=text, blocks=rendered or [blocks.section(blocks.escape(text))], response_type="ephemeral")


async def ack_with(ack: Ack, text: str, rendered: list[blocks.Block] | None = None) -> None:
    """The ephemeral answer to `/freeze`, in the acknowledgement."""
    await ack(text=text, blocks=rendered or [blocks.section(blocks.escape(text))], response_type="ephemeral")


class FreezeHandlers:
    """The freeze feature's Slack handlers: each parses a request, calls the freeze service and
    renders what it returned with `freeze_view`. `register` wires them to Bolt."""

    def __init__(self, app: AsyncApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.freezes = runtime.freezes
        self.tz = runtime.config.tz

    async def freeze_command(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        command = SlashCommand.parse(body)
        try:
            request = grammar.parse(command.text, now=self.runtime.clock.now(), tz=self.tz)
        except grammar.GrammarError as exc:
            await ack_with(ack, f"{exc}\n{grammar.USAGE}")
            return
        except Exception:
            await ack()  # acknowledged like any command; the app's error handler tells the person
            raise
        ready = None if isinstance(request, grammar.OpenForm) else self.ready_reply(request)
        if ready is not None:
            await ack_with(ack, *ready)
            return
        await ack()
        if isinstance(request, grammar.OpenForm):
            await self.form_asked(command, respond)
            return
        async with after_ack(self.app):
            await self.answer(request, command.user_id, respond)

    def ready_reply(self, request: Answerable) -> Reply | None:
        """The answer when it needs no database read and no Slack call (the usage, or the list and
        the status from a fresh snapshot): it goes in the acknowledgement itself, which Slack shows
        like a `respond()` — one HTTP request instead of two, and no work left after the ack."""
        try:
            match request:
                case grammar.ShowUsage():
                    return request.message, None
                case grammar.ListWindows():
                    windows = self.freezes.upcoming_if_ready()
                    if windows is None:
                        return None
                    now = self.runtime.clock.now()
                    return freeze_view.render_list(windows, self.runtime.config.freeze, self.tz, now)
                case grammar.ShowStatus():
                    status = self.freezes.status_if_ready(request.environment)
                    return None if status is None else freeze_view.render_status(status, self.tz)
        except FreezeRefused as exc:
            return freeze_view.refused_reply(exc)
        except Exception:
            log.exception("could not answer %s from the snapshot; answering after the acknowledgement", request)
        return None

    async def form_asked(self, command: SlashCommand, respond: Respond) -> None:
        # Outside the post-ack bound: the trigger_id lives 3 s and must not queue behind answers.
        try:
            await self.open_form(command)
        except Exception as exc:
            log.warning("could not open the /freeze new form: %s", exc)
            async with after_ack(self.app):
                await say(
                    respond,
                    "I could not open the form just now; type the window instead, e.g. "
                    "`/freeze from tomorrow 09:00 until 12:00 Release`.",
                )

    async def open_form(self, command: SlashCommand) -> None:
        today = self.runtime.clock.now().astimezone(self.tz).date().isoformat()
        view = freeze_view.new_form(self.freezes.environments, today, self.tz)
        view["private_metadata"] = form_metadata(command.channel_id)  # where to tell the person if saving fails
        await call_outbound(
            "slack:views.open",
            lambda: self.app.client.views_open(trigger_id=command.trigger_id or "", view=view),
            policy=SLACK_CALL,
            breakers=self.runtime.breakers,
        )

    async def answer(self, request: Answerable, actor: str, respond: Respond) -> None:
        try:
            text, rendered = await self.reply(request, actor)
        except FreezeRefused as exc:
            text, rendered = freeze_view.refused_reply(exc)
        await say(respond, text, rendered)

    async def reply(self, request: Answerable, actor: str) -> Reply:
        match request:
            case grammar.ListWindows():
                return await self.list_windows()
            case grammar.ShowStatus():
                return freeze_view.render_status(await self.freezes.status(request.environment), self.tz)
            case grammar.CreateWindow():
                return await self.create(request, actor)
            case grammar.CancelWindow():
                return await self.cancel(request, actor)
            case grammar.ExtendWindow():
                return await self.extend(request, actor)
            case grammar.RequestExemption():
                return await self.request_exemption(request, actor)
            case grammar.ShowUsage():
                return request.message, None

    async def list_windows(self) -> Reply:
        now = self.runtime.clock.now()
        return freeze_view.render_list(await self.freezes.upcoming(), self.runtime.config.freeze, self.tz, now)

    async def create(self, request: grammar.CreateWindow, actor: str) -> Reply:
        now = self.runtime.clock.now()
        window = await self.freezes.create(
            starts_at=request.starts_at,
            ends_at=request.ends_at,
            environment=request.environment,
            reason=request.reason,
            actor=actor,
        )
        changed(f"freeze #{window.id} was created")
        return freeze_view.created(window, self.tz, now)

    async def cancel(self, request: grammar.CancelWindow, actor: str) -> Reply:
        window = await self.freezes.cancel(request.window_id, actor=actor, require_responder=True)
        changed(f"freeze #{window.id} was cancelled")
        return freeze_view.cancelled(window), None

    async def extend(self, request: grammar.ExtendWindow, actor: str) -> Reply:
        window = await self.freezes.extend(request.window_id, request.by, actor=actor, require_responder=True)
        changed(f"freeze #{window.id} was extended")
        return freeze_view.extended(window, self.tz), None

    async def request_exemption(self, request: grammar.RequestExemption, actor: str) -> Reply:
        exemption = await self.freezes.request_exemption(
            request.window_id, service=request.service, duration=request.duration, reason=request.reason, actor=actor
        )
        changed(f"exemption #{exemption.id} was requested")
        return freeze_view.exemption_requested(exemption, self.runtime.config.channels.deploys)

    async def form_submitted(self, ack: Ack, body: dict[str, Any]) -> None:
        values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        user_id = str((body.get("user") or {}).get("id", ""))
        fields, errors = parse_form(values if isinstance(values, dict) else {}, self.tz)
        errors = errors or self.refusal_errors(fields)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        # Slack gives a view submission 3 s: answer first, then create and announce (which may be slow).
        await ack()
        try:
            await self.freezes.create(
                starts_at=fields["starts_at"],
                ends_at=fields["ends_at"],
                environment=fields["environment"],
                reason=fields["reason"],
                actor=user_id,
            )
        except FreezeRefused as exc:  # only if the start passed between validating and creating
            log.warning("the /freeze new form of %s was valid but creating it was refused: %s", user_id, exc.message)

    def refusal_errors(self, fields: dict[str, Any]) -> dict[str, str]:
        """What the service would refuse in a well-formed form, as an error on the field concerned."""
        try:
            self.freezes.validate(
                starts_at=fields["starts_at"],
                ends_at=fields["ends_at"],
                environment=fields["environment"],
                reason=fields["reason"],
            )
        except FreezeRefused as exc:
            return {_FIELD_BLOCKS.get(exc.field or "", freeze_view.FORM_END_TIME): exc.message[:150]}
        return {}

    async def approve_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await self.decide(ack, body, respond, approve=True)

    async def refuse_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await self.decide(ack, body, respond, approve=False)

    async def decide(self, ack: Ack, body: dict[str, Any], respond: Respond, *, approve: bool) -> None:
        await ack()
        click = ButtonClick.parse(body)
        if not _BUTTON_ID.fullmatch(click.value):
            await respond(
                text="That button does not name an exemption.", response_type="ephemeral", replace_original=False
            )
            return
        try:
            exemption = await self.freezes.decide_exemption(int(click.value), approve=approve, actor=click.user_id)
        except FreezeRefused as exc:
            await respond(text=freeze_view.refused(exc), response_type="ephemeral", replace_original=False)
            return
        text, rendered = freeze_view.exemption_decided(exemption, approve=approve, by=click.user_id)
        await respond(replace_original=True, text=text, blocks=rendered)


def register(app: AsyncApp, runtime: Runtime) -> None:
    handlers = FreezeHandlers(app, runtime)
    app.command(Command.FREEZE.value)(handlers.freeze_command)
    app.view(freeze_view.NEW_FORM)(handlers.form_submitted)
    app.action(freeze_view.APPROVE_EXEMPTION)(handlers.approve_clicked)
    app.action(freeze_view.REFUSE_EXEMPTION)(handlers.refuse_clicked)
