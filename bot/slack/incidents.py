"""`/incident …`, the playbook buttons, and the health answer's "Declare incident" button."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Runtime
from bot.services.incidents import (
    ClaimedRun,
    Incident,
    IncidentProblem,
    NeedsConfirmation,
    Refusal,
    StepRequest,
)
from bot.slack import blocks
from bot.slack import incidents_view as view
from bot.slack.failures import changed
from bot.slack.ids import Action, Command
from bot.slack.incident_posts import best_effort, post_in_thread, update_playbook
from bot.slack.incidents_view import USAGE, IncidentActionId
from bot.slack.payloads import ButtonClick, SlashCommand, json_value

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]
SEVERITIES = ("sev1", "sev2", "sev3")
IN_CHANNEL_ONLY = ("status", "note", "playbook", "resolve")


# -- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclareArgs:
    title: str
    severity: str | None
    playbook: str | None


def parse_declare(words: list[str]) -> DeclareArgs | str:
    """`<title words> [sev1|sev2|sev3] [--playbook name]`, or an error message."""
    title: list[str] = []
    severity: str | None = None
    playbook: str | None = None
    rest = iter(words)
    for word in rest:
        lowered = word.lower()
        if lowered in SEVERITIES:
            if severity is not None:
                return f"Give one severity, not `{severity}` and `{lowered}`."
            severity = lowered
        elif lowered == "--playbook" or lowered.startswith("--playbook="):
            # playbook names are slugs (lowercase): `--playbook=Name` and `--playbook Name` alike
            name = lowered.partition("=")[2] or next(rest, "").lower()
            if not name or name.startswith("--"):
                return "`--playbook` needs a playbook name, e.g. `--playbook production-incident`."
            playbook = name
        elif word.startswith("--"):
            return f"Unknown option `{blocks.quoted(word)}`: only `--playbook <name>` is understood."
        elif re.fullmatch(r"sev\d+", lowered):
            return f"Unknown severity `{blocks.quoted(word)}`: use sev1, sev2 or sev3."
        else:
            title.append(word)
    if not title:
        return "An incident needs a title: `/incident declare API returns 500s sev1`."
    return DeclareArgs(" ".join(title), severity, playbook)


# Ids and attempts are PostgreSQL integers: anything outside them is a damaged (or forged) button.
MAX_DB_INT = 2**31 - 1


def db_int(value: Any, *, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and least <= value <= MAX_DB_INT


def parse_click_value(value: str) -> dict[str, Any] | None:
    parsed = json_value(value)
    if not isinstance(parsed, dict) or not db_int(parsed.get("i"), least=1) or not db_int(parsed.get("a"), least=0):
        return None
    if "f" in parsed and parsed["f"] is not None and not db_int(parsed["f"], least=1):
        return None
    return parsed


# -- listeners --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFlows:
    """The incident feature's Slack flows other features start (a change watch's [Roll back])."""

    open_channel: Callable[[AsyncWebClient, Respond, Incident], Awaitable[None]]
    run_claimed: Callable[[AsyncWebClient, ClaimedRun], Awaitable[None]]
    declare: Callable[[AsyncWebClient, Respond, str, str | None, DeclareArgs], Awaitable[None]]


class IncidentHandlers:
    """The incident feature's Slack handlers: each parses a request, calls the incident service and
    renders what it returned with `incidents_view`. `register` wires them to Bolt."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.incidents = runtime.incidents
        self.tz = runtime.config.tz

    async def refresh_playbook(self, client: AsyncWebClient, incident: Incident) -> None:
        current = await self.incidents.get(incident.id) or incident
        if not current.channel_id or not current.playbook_ts or not current.playbook:
            return
        await update_playbook(client, await self.incidents.playbook_view(current), self.tz)

    async def header(self, incident: Incident) -> tuple[str, list[blocks.Block]]:
        """The header, with what changed before the incident ("is it the deploy?")."""
        last = self.runtime.health.last_round
        changes = await self.incidents.changes_before(incident.declared_at, last.results if last else ())
        return view.header(incident, self.tz, changes)

    async def refresh_header(self, client: AsyncWebClient, incident: Incident) -> None:
        if not incident.channel_id or not incident.header_ts:
            return
        text, rendered = await self.header(incident)
        try:
            await client.chat_update(channel=incident.channel_id, ts=incident.header_ts, text=text, blocks=rendered)
        except SlackApiError as exc:
            log.warning("could not update the header of incident %s: %s", incident.id, exc)

    async def thread_reply(self, client: AsyncWebClient, incident: Incident, text: str) -> None:
        """Post in the playbook's thread. A click can come while the playbook's post is still in
        flight (its ts not yet recorded): then the message goes to the channel itself."""
        if not incident.channel_id or not incident.playbook_ts:
            incident = await self.incidents.get(incident.id) or incident
        await post_in_thread(client, incident, text)

    async def invite(self, client: AsyncWebClient, channel_id: str, users: list[str]) -> None:
        """Invite everyone at once; if Slack refuses the batch (one deactivated user fails it all),
        invite one by one so the others still get in."""
        people = list(dict.fromkeys(users))
        try:
            await client.conversations_invite(channel=channel_id, users=",".join(people))
            return
        except SlackApiError as exc:
            log.warning("inviting %s to %s: %s; inviting one by one", people, channel_id, exc.response.get("error"))
        for user in people:
            try:
                await client.conversations_invite(channel=channel_id, users=user)
            except SlackApiError as exc:
                log.warning("cannot invite %s to %s: %s", user, channel_id, exc.response.get("error"))

    async def open_channel(self, client: AsyncWebClient, respond: Respond, incident: Incident) -> None:
        """Create the channel (next free name), invite people, post header and playbook, link it."""
        created = None
        for name in self.incidents.channel_names(incident):
            try:
                created = await client.conversations_create(name=name)
                changed(f"its channel <#{created['channel']['id']}> was created")
                break
            except SlackApiError as exc:
                if exc.response.get("error") != "name_taken":
                    await respond(
                        response_type="ephemeral",
                        text=f"Incident #{incident.id} is declared, but Slack refused to create its "
                        f"channel `{name}`: `{exc.response.get('error')}`.",
                    )
                    return
        if created is None:
            await respond(
                response_type="ephemeral",
                text=f"Incident #{incident.id} is declared, but every channel name I tried is taken.",
            )
            return
        channel_id, channel_name = created["channel"]["id"], created["channel"]["name"]
        await self.invite(client, channel_id, [incident.commander, *await self.incidents.responders.user_ids()])
        header_ts, problem = None, None
        try:
            text, rendered = await self.header(incident)
            header_ts = (await client.chat_postMessage(channel=channel_id, text=text, blocks=rendered))["ts"]
        except SlackApiError as exc:
            problem = str(exc.response.get("error"))
        # The channel is recorded before any button exists: a click must find where to report.
        incident = await self.incidents.attach_channel(
            incident, channel_id=channel_id, channel_name=channel_name, header_ts=header_ts, playbook_ts=None
        )
        if incident.playbook and problem is None:
            problem = await self.post_playbook(client, incident)
        await respond(response_type="in_channel", replace_original=False, text=view.declared_link(incident))
        if problem is not None:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"Slack refused a message in <#{channel_id}> (`{problem}`). Run `/incident playbook` "
                "there to post the buttons again.",
            )

    async def post_playbook(self, client: AsyncWebClient, incident: Incident) -> str | None:
        """Post the buttons and record where; Slack's error if it refused. A step clicked before the
        ts was recorded could not update this message, so it is redrawn if anything ran meanwhile."""
        assert incident.channel_id is not None
        text, rendered = view.playbook(await self.incidents.playbook_view(incident), self.tz)
        try:
            posted = await client.chat_postMessage(channel=incident.channel_id, text=text, blocks=rendered)
        except SlackApiError as exc:
            return str(exc.response.get("error"))
        incident = await self.incidents.playbook_posted(incident, actor="system", ts=posted["ts"], audit=False)
        if view.playbook(await self.incidents.playbook_view(incident), self.tz)[1] != rendered:
            await self.refresh_playbook(client, incident)
        return None

    async def declare(
        self, client: AsyncWebClient, respond: Respond, user: str, channel: str | None, args: DeclareArgs
    ) -> None:
        try:
            incident = await self.incidents.declare(
                title=args.title, severity=args.severity, commander=user, playbook=args.playbook, declared_in=channel
            )
        except IncidentProblem as exc:
            await respond(response_type="ephemeral", replace_original=False, text=str(exc))
            return
        changed(f"incident #{incident.id} was declared")
        await self.open_channel(client, respond, incident)

    async def incident_command(self, ack: Ack, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        await ack()
        command = SlashCommand.parse(body)
        words = command.args
        sub = words[0].lower() if words else ""
        if sub == "declare":
            parsed = parse_declare(words[1:])
            if isinstance(parsed, str):
                await respond(response_type="ephemeral", text=f"{parsed}\n{USAGE}")
                return
            await self.declare(client, respond, command.user_id, command.channel_id, parsed)
            return
        if sub not in IN_CHANNEL_ONLY:
            lead = f"I don't know `/incident {blocks.quoted(sub)}`.\n" if sub else ""
            await respond(response_type="ephemeral", text=lead + USAGE)
            return
        incident = await self.incidents.in_channel(command.channel_id)
        if incident is None:
            open_now = await self.incidents.open_incidents()
            listed = ", ".join(f"#{i.id} <#{i.channel_id}>" for i in open_now if i.channel_id) or "none"
            await respond(
                response_type="ephemeral",
                text=f"`/incident {sub}` works in an incident's channel. Open incidents: {listed}.",
            )
            return
        rest = command.text.split(None, 1)[1] if len(words) > 1 else ""
        try:
            await self.in_channel_command(client, respond, command, incident, sub, rest)
        except IncidentProblem as exc:
            await respond(response_type="ephemeral", text=str(exc))

    async def in_channel_command(
        self, client: AsyncWebClient, respond: Respond, command: SlashCommand, incident: Incident, sub: str, rest: str
    ) -> None:
        if sub == "status":
            text, rendered = view.status(await self.incidents.playbook_view(incident), self.tz)
            await respond(response_type="ephemeral", text=text, blocks=rendered)
        elif sub == "note":
            await self.incidents.note(incident, actor=command.user_id, text=rest)
            await respond(response_type="in_channel", text=f"📝 Note from <@{command.user_id}>: {blocks.escape(rest)}")
        elif sub == "playbook":
            text, rendered = view.playbook(await self.incidents.playbook_to_post_again(incident), self.tz)
            try:
                posted = await client.chat_postMessage(channel=command.channel_id, text=text, blocks=rendered)
            except Exception as exc:
                log.warning("could not post the playbook of incident %s", incident.id, exc_info=True)
                reason = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                await respond(
                    response_type="ephemeral",
                    text=f"Slack did not take the playbook message (`{reason}`); nothing changed. "
                    "Try `/incident playbook` again in a moment.",
                )
                return
            await self.incidents.playbook_posted(incident, actor=command.user_id, ts=posted["ts"])
            await respond(
                response_type="ephemeral", text="The playbook is posted again below; step updates now go to that copy."
            )
        elif sub == "resolve":
            resolution = await self.incidents.resolve(incident, actor=command.user_id, summary=rest or None)
            await self.refresh_playbook(client, resolution.incident)
            await self.refresh_header(client, resolution.incident)
            text, rendered = view.resolution(resolution, self.tz)
            await respond(response_type="in_channel", text=text, blocks=rendered)

    async def step_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        await ack()
        with self.runtime.steps_in_flight.admit() as admitted:
            if not admitted:  # shutting down (SIGTERM): another replica, or this one restarted, takes it
                await respond(
                    response_type="ephemeral",
                    replace_original=False,
                    text="guardrail is restarting and did not start that step; nothing was changed. "
                    "Click again in a moment.",
                )
                return
            await self.step_click(body, respond, client)

    async def step_click(self, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        click = ButtonClick.parse(body)
        kind, _, step_id = click.action_id.partition(":")
        value = parse_click_value(click.value)
        if value is None or not step_id:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text="That button's data is damaged; post the playbook again with `/incident playbook`.",
            )
            return
        confirm = kind == IncidentActionId.CONFIRM.value
        freeze = value.get("f") if confirm else None
        request = StepRequest(
            incident_id=value["i"],
            step_id=step_id,
            actor=click.user_id,
            seen_attempt=value["a"],
            undo=kind == IncidentActionId.UNDO.value or (confirm and value.get("u") is True),
            confirmed_rerun=confirm and value.get("r") is True,
            freeze_override=freeze,
        )
        decision = await self.incidents.steps.claim(request)
        if isinstance(decision, Refusal):
            await respond(response_type="ephemeral", replace_original=False, text=view.refusal(decision))
            if decision.code == "order":
                incident = await self.incidents.get(request.incident_id)
                if incident is not None:
                    await self.refresh_playbook(client, incident)
            return
        if isinstance(decision, NeedsConfirmation):
            text, rendered = view.confirmation(decision)
            await respond(response_type="ephemeral", replace_original=False, text=text, blocks=rendered)
            return
        changed(f"step `{step_id}` was started")
        await self.run_claimed(client, decision)

    async def run_claimed(self, client: AsyncWebClient, run: ClaimedRun) -> None:
        incident_id = run.incident.id
        if run.freeze_override is not None:
            await best_effort(
                "announce a freeze override",
                incident_id,
                client.chat_postMessage(channel=self.runtime.config.channels.deploys, text=view.freeze_override(run)),
            )
        await best_effort("show the step running", incident_id, self.refresh_playbook(client, run.incident))
        await best_effort(
            "post the step's start", incident_id, self.thread_reply(client, run.incident, view.started(run))
        )

        async def progress(line: str) -> None:
            await best_effort(
                "post progress", incident_id, self.thread_reply(client, run.incident, f"… {blocks.escape(line)}")
            )

        result = await self.incidents.steps.execute(run, progress)
        self.runtime.metrics.step_finished(
            "unrecorded" if not result.stored else "succeeded" if result.outcome.ok else "failed"
        )
        await best_effort("show the step's result", incident_id, self.refresh_playbook(client, run.incident))
        await best_effort(
            "post the step's result", incident_id, self.thread_reply(client, run.incident, view.finished(result))
        )

    async def preview_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        click = ButtonClick.parse(body)
        step_id = click.action_id.partition(":")[2]
        value = parse_click_value(click.value)
        if value is None or not step_id:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text="That button's data is damaged; post the playbook again with `/incident playbook`.",
            )
            return
        outcome = await self.incidents.steps.preview(incident_id=value["i"], step_id=step_id, actor=click.user_id)
        if isinstance(outcome, Refusal):
            await respond(response_type="ephemeral", replace_original=False, text=view.refusal(outcome))
            return
        incident = await self.incidents.get(value["i"])
        playbook = self.incidents.playbook_of(incident) if incident else None
        step = playbook.step(step_id) if playbook else None
        await respond(
            response_type="ephemeral",
            replace_original=False,
            text=view.preview(step.label if step else step_id, outcome),
        )

    async def lift_clicked(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        click = ButtonClick.parse(body)
        parsed = json_value(click.value)
        incident_id = parsed.get("i") if isinstance(parsed, dict) else None
        if not isinstance(incident_id, int) or not db_int(incident_id, least=1):
            await respond(response_type="ephemeral", replace_original=False, text="That button's data is damaged.")
            return
        result = await self.incidents.lift_freeze(incident_id, actor=click.user_id)
        if isinstance(result, Refusal):
            await respond(response_type="ephemeral", replace_original=False, text=view.refusal(result))
            return
        await respond(response_type="in_channel", replace_original=False, text=view.freeze_lift(result))

    async def declare_from_health(
        self, ack: Ack, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        await ack()
        click = ButtonClick.parse(body)
        parsed = json_value(click.value)
        services = parsed.get("services") if isinstance(parsed, dict) else None
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text="That button does not say which services are down; use `/incident declare <title>` instead.",
            )
            return
        title = f"{', '.join(services)} down" if services else "Service outage"
        await self.declare(client, respond, click.user_id, click.channel_id, DeclareArgs(title, None, None))


def register(app: AsyncApp, runtime: Runtime) -> IncidentFlows:
    handlers = IncidentHandlers(runtime)
    app.command(Command.INCIDENT.value)(handlers.incident_command)
    app.action(re.compile(r"^incident\.step\.(run|undo|confirm):"))(handlers.step_clicked)
    app.action(re.compile(r"^incident\.step\.preview:"))(handlers.preview_clicked)
    app.action(IncidentActionId.LIFT_FREEZE.value)(handlers.lift_clicked)
    app.action(Action.DECLARE_INCIDENT.value)(handlers.declare_from_health)
    return IncidentFlows(open_channel=handlers.open_channel, run_claimed=handlers.run_claimed, declare=handlers.declare)
