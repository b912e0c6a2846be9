"""`guardrail sandbox`: the real bot, an embedded Slack stand-in as its Web API, local fakes behind
every `${VAR}`, and a Slack-like page on the bot's own HTTP port.

Everything runs in one event loop: the stand-in, the target server and the provider fakes on free
local ports, the bot (its scheduler included) on `--port`. The page's backend talks to the bot only
as Slack does (signed requests to /slack/events); the bot talks only to the stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from bot.config import GuardrailConfig, load_config
from bot.db import migrate
from bot.runtime import Runtime, build_runtime
from bot.sandbox.demo_day import DemoDay
from bot.sandbox.drills import DrillTargets, DrillWorld, describe_environment, redis_problem_async, variables_used
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.kubernetes import FakeKubernetes
from bot.sandbox.page import sandbox_routes
from bot.sandbox.slack_side import NON_RESPONDER_ID, Person, SlackSide, Stopwatch
from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import DEFAULT_TOKEN, FakeSlack
from bot.sandbox.standin.server import _InLoopServer, _serve, serve_asgi
from bot.sandbox.standin.workspace import BOT_USER_ID
from bot.server import build_app
from bot.settings import Settings

log = logging.getLogger(__name__)

DRILLS = ("demo-day",)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own: the drills flush nothing, but add jobs
NON_RESPONDER = Person(NON_RESPONDER_ID, "alice", responder=False)
_SPARE_RESPONDERS = ("U0DAVE", "U0ERIN")
CHANNEL_NAMES = {"deploys": "deploys", "alerts": "alerts"}
SWITCH_TO_SLACK = (
    "to use real Slack instead, put SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in .env "
    '(see README, "Create the Slack app") and run `make run` again'
)


@dataclass
class SandboxOptions:
    config_dir: Path = Path("playbooks")
    port: int = 3000
    host: str = "127.0.0.1"
    drill: str | None = None
    db: Path | None = None
    redis_url: str = DEFAULT_REDIS_URL


@dataclass
class Sandbox:
    """A running sandbox (for tests and the CLI): the page's URL and the parts behind it."""

    url: str
    runtime: Runtime
    fake: FakeSlack
    side: SlackSide
    world: DrillWorld
    demo: DemoDay | None


def _name(user_id: str) -> str:
    return user_id.lower().removeprefix("u0").removeprefix("w0") or user_id.lower()


def people_for(config: GuardrailConfig) -> tuple[list[Person], dict[str, list[str]]]:
    """Two responders (named in the configuration, or added to its responder user groups) and one
    non-responder, and the user groups' members."""
    responders = list(config.access.responders)
    groups: dict[str, list[str]] = {g: [] for g in responders if g.startswith("S")}
    people = [Person(uid, _name(uid), True) for uid in responders if uid[:1] in "UW"][:2]
    spares = [uid for uid in _SPARE_RESPONDERS if uid not in responders]
    while len(people) < 2 and groups and spares:
        uid = spares.pop(0)
        people.append(Person(uid, _name(uid), True))
        for members in groups.values():
            members.append(uid)
    return [*people, NON_RESPONDER], groups


@contextlib.asynccontextmanager
async def _served_targets(targets: DrillTargets) -> AsyncIterator[str]:
    async with serve_asgi(targets.app) as url:
        targets.url = url
        try:
            yield url
        finally:
            targets.release.set()


@contextlib.asynccontextmanager
async def running_sandbox(
    options: SandboxOptions, *, say: Callable[[str], None] | None = None
) -> AsyncIterator[Sandbox]:
    """Start everything; yields once the page answers. Leaves the temporary directory's files behind
    only when `--db` names the database file."""
    say = say or _say
    with tempfile.TemporaryDirectory(prefix="guardrail-sandbox-") as tmp:
        workdir = Path(tmp)
        targets, heroku, kube = DrillTargets(), FakeHeroku(), FakeKubernetes()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(_served_targets(targets))
            heroku_url = await stack.enter_async_context(heroku.serve())
            kube_url = await stack.enter_async_context(kube.serve())
            world = DrillWorld(
                targets,
                heroku,
                kube,
                workdir,
                options.redis_url,
                redis_problem=await redis_problem_async(options.redis_url),
                heroku_url=heroku_url,
                kube_url=kube_url,
            )
            loaded = load_config(options.config_dir, world.supply(variables_used(options.config_dir)))
            world.adopt(loaded.config)
            people, groups = people_for(loaded.config)
            fake = FakeSlack(users={p.id: {"name": p.name} for p in people}, usergroups=groups)
            fake.url = await stack.enter_async_context(serve_asgi(fake.app))
            members = [p.id for p in people] + [BOT_USER_ID]
            fake.members["C0GENERAL"] = list(members)
            for key, name in CHANNEL_NAMES.items():
                channel_id = getattr(loaded.config.channels, key, None)
                if channel_id:
                    fake.add_channel(name, channel_id=channel_id, members=list(members))
            anchor = loaded.config.audit.anchor_channel if loaded.config.audit else None
            if anchor:
                fake.add_channel("audit", channel_id=anchor, members=list(members))

            database_url = f"sqlite:///{(options.db or workdir / 'guardrail.db').resolve()}"
            await asyncio.to_thread(migrate.upgrade, database_url)
            signing_secret = secrets.token_hex(16)
            settings = Settings(
                _env_file=None,
                slack_bot_token=DEFAULT_TOKEN,
                slack_signing_secret=signing_secret,
                slack_app_token=None,
                slack_api_url=fake.api_url,
                database_url=database_url,
                guardrail_config=options.config_dir,
                guardrail_api_token=secrets.token_hex(16),
                guardrail_audit_key=secrets.token_hex(16),
                heroku_api_token=world.heroku_token,
                heroku_api_url=heroku_url,
                kubeconfig=str(world.kubeconfig()),
                port=options.port or 3000,
            )  # the setting is informational here; uvicorn binds options.port
            runtime = build_runtime(settings, loaded)
            app, _ = build_app(runtime)
            # The stand-in's in-loop server: readiness is an event, and Ctrl-C stays a KeyboardInterrupt.
            server = _InLoopServer(
                uvicorn.Config(
                    app,
                    host=options.host,
                    port=options.port,
                    log_level="warning",
                    lifespan="on",
                    timeout_graceful_shutdown=2,
                )
            )
            serving = asyncio.create_task(_serve(server), name="sandbox")
            ready = asyncio.create_task(server.ready.wait())
            await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if not server.started:
                if serving.done():
                    serving.result()
                raise RuntimeError(f"the sandbox could not listen on {options.host}:{options.port}")
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"http://{options.host}:{port}"
            client = await stack.enter_async_context(SlackEventsClient(url, signing_secret, fake))
            verify = next(
                (step.label for playbook in loaded.config.playbooks for step in playbook.steps if step.action.checks),
                None,
            )
            side = SlackSide(fake, client, people, Stopwatch(verify))
            demo = DemoDay(world, side, url, settings) if DemoDay.fits(loaded.config) else None
            app.router.routes.extend(sandbox_routes(side, world, demo=demo.set_the_scene if demo else None))
            try:
                say(f"guardrail sandbox: open {url}/ (Slack is simulated; nothing leaves this machine)")
                say(f"  database {database_url}; configuration {options.config_dir}")
                say("  drill values for the configuration's variables:")
                for line in describe_environment(world.described):
                    say(line)
                if world.redis_problem:
                    say(f"  {world.redis_problem}")
                if options.drill == "demo-day":
                    if demo is None:
                        raise RuntimeError(
                            "the demo-day drill needs the shipped playbooks "
                            "(an `api` service and a playbook with a rollback step)"
                        )
                    await demo.set_the_scene()
                    say('  demo-day drill: the API is down and the worker failing; ask "are we down?" in #general')
                yield Sandbox(url, runtime, fake, side, world, demo)
            finally:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await serving
                fake.release_holds()


def _say(line: str) -> None:
    print(line, flush=True)  # a line at a time, also when the output is a pipe or a file


def run_sandbox(options: SandboxOptions) -> int:
    """`guardrail sandbox`: serve until Ctrl-C."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # stop cleanly: the fakes, the bot, the temporary files
            loop.add_signal_handler(signum, stop.set)
        async with running_sandbox(options):
            await stop.wait()
            _say("guardrail sandbox: stopping")

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
    return 0
