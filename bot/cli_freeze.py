"""`guardrail freeze create|list|cancel`: freeze windows from a terminal or a script, without Slack.

The same service calls as `/freeze` (same rules, audit entries and announcement: written to the
outbox with the window, posted in the deploys channel by the running bot's next outbox tick).
Times are written as in Slack (`/freeze from … until …`), read in the team's time zone.

The command works on the database directly, so whoever runs it holds the database credentials
and could change any row anyway: it may cancel any window, not only its own (unlike an API
token). What it does is audited as `cli:<--actor or the OS user name>`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from bot.cli_errors import CliError
from bot.freeze_text import plain, window_json, window_line
from bot.services.freeze import grammar
from bot.services.freeze.models import FreezeRefused, NotFound

if TYPE_CHECKING:
    from bot.runtime import Runtime

T = TypeVar("T")
ACTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,59}")
_CLAUSES = {"for", "in", "from", "until", "before", "lead", "on"}  # the grammar's own words
_REASON = "\x00"  # stands in for the reason while the times are parsed (no word can be it)
MAX_ID = 999_999_999


def window_number(text: str) -> int:
    """argparse type for a window id: `3` or `#3`."""
    digits = text.strip().removeprefix("#")
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text!r} is not a freeze window number (write it as in #3)")
    return int(digits)


def actor_name(given: str | None) -> str:
    """`cli:<name>`: --actor, or the OS user running the command."""
    name = given
    if name is None:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no user name in a bare container
            raise CliError("cannot tell who you are (no user name): say it with --actor NAME") from None
    if not ACTOR.fullmatch(name):
        raise CliError(
            f"--actor {name!r}: 1-60 characters: letters, digits and . _ @ + - (starting with a letter or digit)"
        )
    return f"cli:{name}"


def window_span(
    start: str | None, length: str | None, end: str | None, *, now: datetime, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """--start/--for/--end as `/freeze from … for …|until …` reads them."""
    words: list[str] = []
    for flag, clause, value in (("--start", "from", start), ("--for", "for", length), ("--end", "until", end)):
        if value is None:
            continue
        parts = value.split()
        if not parts:
            raise CliError(f"{flag} is empty")
        clash = next((w for w in parts if w.lower() in _CLAUSES), None)
        if clash is not None or (clause == "for" and len(parts) > 1):
            raise CliError(
                f"{flag} {value!r}: write only the {'duration' if clause == 'for' else 'time'}, "
                "e.g. --start 'tomorrow 09:00' --for 2h"
            )
        words += [clause, *parts]
    try:
        request = grammar.parse_window([*words, _REASON], now=now, tz=tz)
    except grammar.GrammarError as exc:
        raise CliError(plain(str(exc)).split(" Examples:")[0]) from None
    except OverflowError:
        raise CliError("that time is out of range: keep dates between year 1 and 9999") from None
    if request.reason != _REASON:
        leftover = request.reason.replace(_REASON, "").strip()
        raise CliError(
            f"did not understand {leftover!r} in --start/--end: write a time like 14:00, "
            "'tomorrow 09:00' or '2026-12-01 14:00 UTC'"
        )
    return request.starts_at, request.ends_at


def _run(runtime: Runtime, work: Callable[[], Awaitable[T]]) -> T:
    async def run() -> T:
        try:
            return await work()
        except NotFound as exc:
            raise CliError(plain(exc.message).replace(" (see /freeze list)", "")) from None
        except FreezeRefused as exc:
            raise CliError(plain(exc.message)) from None
        except CliError:
            raise
        except Exception as exc:  # the database went away mid-command: one line, not a traceback
            first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise CliError(f"the database failed: {type(exc).__name__}: {first_line}") from None
        finally:
            await runtime.close()

    return asyncio.run(run())


def _connect() -> Runtime:
    from bot import cli

    settings = cli._settings()
    cli._check_schema(settings, read_only=True)
    return cli._runtime(settings, read_only=True)


def cmd_freeze_create(args: argparse.Namespace) -> int:
    actor = actor_name(args.actor)
    if (args.duration is None) == (args.end is None):
        raise CliError("say how long: --for 2h, or --end '2026-12-01 18:00' (one of them)")
    runtime = _connect()
    tz = runtime.config.tz

    async def create() -> Any:
        starts_at, ends_at = window_span(args.start, args.duration, args.end, now=runtime.clock.now(), tz=tz)
        return await runtime.freezes.create(
            starts_at=starts_at, ends_at=ends_at, environment=args.env, reason=args.reason, actor=actor
        )

    window = _run(runtime, create)
    now = runtime.clock.now()
    if args.json:
        print(json.dumps(window_json(window, now), ensure_ascii=False))
    else:
        print(f"created {window_line(window, tz, now)}")
    print(f"the running bot announces it in {runtime.config.channels.deploys}", file=sys.stderr)
    return 0


def cmd_freeze_list(args: argparse.Namespace) -> int:
    runtime = _connect()
    environment = args.env

    async def upcoming() -> Any:
        if environment is not None and environment not in runtime.freezes.environments:
            raise CliError(f"unknown environment {environment!r}: use one of {', '.join(runtime.freezes.environments)}")
        return await runtime.freezes.upcoming()

    windows = [w for w in _run(runtime, upcoming) if environment is None or w.environment == environment]
    now, tz = runtime.clock.now(), runtime.config.tz
    if args.json:
        print(json.dumps({"freezes": [window_json(w, now) for w in windows]}, ensure_ascii=False))
        return 0
    if not windows:
        print("no freeze windows active or upcoming")
    for window in windows:
        print(window_line(window, tz, now, windows))
    return 0


def cmd_freeze_cancel(args: argparse.Namespace) -> int:
    actor = actor_name(args.actor)
    runtime = _connect()

    async def cancel() -> Any:
        return await runtime.freezes.cancel(args.id, actor=actor)

    window = _run(runtime, cancel)
    now = runtime.clock.now()
    if args.json:
        print(json.dumps(window_json(window, now), ensure_ascii=False))
    else:
        print(f"cancelled {window_line(window, runtime.config.tz, now)}")
    return 0


def add_commands(freeze_sub: Any) -> None:
    """`create`, `list` and `cancel` under `guardrail freeze`."""
    create = freeze_sub.add_parser(
        "create",
        help="create a freeze window (announced in the deploys channel)",
        description="Create a freeze window, as /freeze does in Slack: the same rules, audit entry and "
        "announcement. Times as in Slack, in the configured time zone: now, 14:00, 'tomorrow 09:00', "
        "'2026-12-01 14:00', '2026-12-01 14:00 UTC'. Exit 0 created, 2 refused (with the reason).",
    )
    create.add_argument("--env", default=None, help="environment (default: freeze.default_environment)")
    create.add_argument("--start", default=None, help="when it starts (default: now)")
    create.add_argument("--for", dest="duration", default=None, metavar="DURATION", help="how long, e.g. 2h, 1h30m")
    create.add_argument("--end", default=None, help="when it ends (instead of --for)")
    create.add_argument("--reason", required=True, help="why, e.g. 'Demo Day'")
    create.add_argument("--actor", default=None, help="who to audit it as (default: your user name), as cli:NAME")
    create.add_argument("--json", action="store_true", help="print the window as JSON")
    create.set_defaults(handler=cmd_freeze_create)

    listing = freeze_sub.add_parser("list", help="list active and upcoming freeze windows")
    listing.add_argument("--env", default=None, help="only this environment")
    listing.add_argument("--json", action="store_true", help='print {"freezes": [...]} as the API does')
    listing.set_defaults(handler=cmd_freeze_list)

    cancel = freeze_sub.add_parser("cancel", help="cancel a freeze window (announced in the deploys channel)")
    cancel.add_argument("id", type=window_number, help="window number, as in #3")
    cancel.add_argument("--actor", default=None, help="who to audit it as (default: your user name), as cli:NAME")
    cancel.add_argument("--json", action="store_true", help="print the cancelled window as JSON")
    cancel.set_defaults(handler=cmd_freeze_cancel)
