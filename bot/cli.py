"""The `guardrail` command. Thin: parse arguments, call services, print, choose an exit code."""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.metadata
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from pydantic import ValidationError

from bot.cli_errors import (
    READ_ONLY_SKIPS,
    CliError,
    SubcommandParser,
    check_listen,
    check_output_path,
    incident_number,
    open_output,
    port_number,
    quiet_stdout,
    require_database,
    say,
    settings_problems,
)
from bot.cli_freeze import add_commands as add_freeze_commands
from bot.config import ConfigInvalid, LoadedConfig, load_config, parse_duration
from bot.logs import keep_secrets_out_of_logs
from bot.resilience import CallPolicy, call_outbound
from bot.services.freeze.models import FreezeRefused, GateUnavailable
from bot.settings import Settings, config_environment

# The database, migrations and the runtime (SQLAlchemy, alembic, redis, rq …) are imported by the
# commands that use them, so `check-config` and `--help` start in a fraction of the time.
if TYPE_CHECKING:
    from bot.db.audit import Anchor, AuditEntry, ChainVerification
    from bot.db.migrate import SchemaState
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid environment: {problems}") from None


def _load(settings: Settings, *, read_only: bool = False) -> LoadedConfig:
    """The YAML configuration; read-only commands leave out what they never use (and its ${VAR}s)."""
    try:
        return load_config(settings.guardrail_config, config_environment(), skip=READ_ONLY_SKIPS if read_only else ())
    except ConfigInvalid as exc:
        print(
            f"guardrail: configuration in {settings.guardrail_config} is invalid "
            f"({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _runtime(
    settings: Settings,
    loaded: LoadedConfig | None = None,
    *,
    read_only: bool = False,
    slack: bool = False,
    health_context: bool = True,
) -> Runtime:
    """The runtime every command uses; `slack` only for the commands that talk to Slack (without it,
    announcements wait in the outbox for the server); `health_context=False` for a health service
    that never asks the database."""
    from bot.db.urls import UnsupportedDatabaseURL
    from bot.runtime import build_runtime

    loaded = loaded or _load(settings, read_only=read_only)
    try:
        return build_runtime(settings, loaded, slack=slack, health_context=health_context)
    except UnsupportedDatabaseURL as exc:
        raise CliError(f"DATABASE_URL: {exc}") from None


def _check_schema(settings: Settings, *, read_only: bool = False, within: float | None = None) -> None:
    """Refuse to run against a database that is unreachable or not migrated. `within`: seconds the
    database gets to answer (connecting and the query; importing alembic is local work, not counted)."""
    from bot.db import migrate as migrations
    from bot.db.urls import UnsupportedDatabaseURL, redacted

    if read_only:  # connecting would create the missing SQLite file; `serve` reports it as not migrated
        require_database(settings.database_url)
    limit = float("inf") if within is None else within

    def state() -> SchemaState:
        return migrations.schema_state(
            settings.database_url,
            connect_timeout=min(settings.database_connect_timeout, limit),
            statement_timeout=min(settings.database_statement_timeout, limit),
        )

    try:
        schema = _within(within, state)
    except UnsupportedDatabaseURL as exc:
        raise CliError(f"DATABASE_URL: {exc}") from None
    except Exception as exc:
        raise CliError(_unreachable(settings, exc)) from None
    if schema.pending:
        raise CliError(
            f"the database at {redacted(settings.database_url)} is not migrated "
            f"(missing {', '.join(sorted(schema.pending))}): run `guardrail migrate` first"
        )
    if schema.newer:
        log.warning(
            "the database was migrated by a newer guardrail (%s); this version runs against it, as "
            "migrations stay compatible with the previous release",
            ", ".join(sorted(schema.newer)),
        )


def _within(seconds: float | None, work: Callable[[], T]) -> T:
    """`work()`, given up on after `seconds` (`TimeoutError`). It runs in a daemon thread, so a
    blocking call stuck on a silent network neither delays the answer nor keeps the process alive."""
    if seconds is None:
        return work()
    outcome: list[T] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)
        finally:
            finished.set()

    threading.Thread(target=run, name="guardrail-bounded", daemon=True).start()
    if not finished.wait(seconds):
        raise TimeoutError(f"no answer within {seconds:g}s")
    if failure:
        raise failure[0]
    return outcome[0]


def _unreachable(settings: Settings, exc: Exception) -> str:
    from bot.db.urls import redacted

    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"cannot reach the database at {redacted(settings.database_url)}: {type(exc).__name__}: {first_line}"


# --- commands -------------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    """The YAML configuration and, unless --yaml-only, the settings `make run` needs (Slack, DATABASE_URL)."""
    settings = _settings()
    if args.dir:
        settings = settings.model_copy(update={"guardrail_config": args.dir})
    problems = [] if args.yaml_only else settings_problems(settings)
    try:
        loaded = _load(settings)
    except SystemExit:
        if problems:  # every problem at once: the YAML's were listed, the settings' follow
            say("settings: " + "; ".join(problems))
        raise
    config = loaded.config
    if problems:
        raise CliError(
            "settings: " + "; ".join(problems) + " (the YAML configuration is valid; "
            "`guardrail check-config --yaml-only` checks only that)"
        )
    print(
        f"configuration OK: {len(loaded.files)} file(s), {len(config.services)} service(s), "
        f"{len(config.playbooks)} playbook(s); sha256 {loaded.sha256}"
    )
    if not args.yaml_only:
        from bot.db.urls import redacted

        transport = "Socket Mode" if settings.socket_mode else "HTTP"
        print(f"settings OK: Slack over {transport}, database {redacted(settings.database_url)}")
    from bot.actions.environment import setup_warnings

    for warning in setup_warnings(config, settings):
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from bot.db import migrate as migrations
    from bot.db.urls import UnsupportedDatabaseURL, redacted

    settings = _settings()
    try:
        migrations.upgrade(settings.database_url)
    except UnsupportedDatabaseURL as exc:
        raise CliError(f"DATABASE_URL: {exc}") from None
    except OperationalError as exc:
        raise CliError(_unreachable(settings, exc)) from None
    print(f"database {redacted(settings.database_url)} is at the latest schema")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot import doctor  # imports slack_sdk and the probes only when asked

    settings = _settings()
    loaded = _load(settings)
    text, code = doctor.report(asyncio.run(doctor.diagnose(settings, loaded, manifest=args.manifest)))
    print(text)
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.server import serve  # imports uvicorn and Bolt only when serving

    settings = _settings()
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    loaded = _load(settings)
    problems = settings.slack_problems()
    if problems:
        raise CliError("Slack is not configured: " + "; ".join(problems))
    _check_schema(settings)
    check_listen(args.host, settings.port)
    runtime = _runtime(settings, loaded, slack=True)
    try:
        missing = asyncio.run(_audit_key_missing(runtime))
    except Exception as exc:
        raise CliError(_unreachable(settings, exc)) from None
    if missing is not None:
        raise CliError(f"not serving: {missing}")
    serve(runtime, host=args.host)
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    """The sandbox: imports the stand-in, the fakes and uvicorn only when asked for."""
    from bot.sandbox.run import SandboxOptions, run_sandbox

    if not args.config.is_dir():
        raise CliError(f"--config {args.config}: no such directory (run from the repository, or name yours)")
    check_listen("127.0.0.1", args.port)
    try:
        return run_sandbox(SandboxOptions(config_dir=args.config, port=args.port, drill=args.drill, db=args.db))
    except ConfigInvalid as exc:
        raise CliError(f"configuration in {args.config} is invalid: " + "; ".join(map(str, exc.problems))) from None
    except (RuntimeError, OSError) as exc:
        raise CliError(f"sandbox: {exc}") from None


async def _audit_key_missing(runtime: Runtime) -> Exception | None:
    """Whether the audit log is signed and this process has no key: it could record nothing."""
    try:
        return await runtime.audit.key_missing()
    finally:
        await runtime.db.dispose()  # its connections belong to this loop; `serve` runs another


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text)
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--since {text!r}: use a duration like 7d or a date like 2026-12-01") from None
    try:  # the database compares UTC times: a zone may push year 1 or 9999 out of range
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise CliError(f"--since {text!r}: that date is out of range") from None


def _entry_row(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


async def _export(runtime: Runtime, fmt: str, since: datetime | None, out: TextIO) -> int:
    count = 0
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(
            out, fieldnames=["seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"]
        )
        writer.writeheader()
    async for entry in runtime.audit.entries(since=since):
        row = _entry_row(entry)
        if writer is not None:
            writer.writerow({**row, "details": json.dumps(entry.details, sort_keys=True)})
        else:
            out.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count


def cmd_audit_export(args: argparse.Namespace) -> int:
    settings = _settings()
    since = _parse_since(args.since)
    check_output_path(args.output)
    _check_schema(settings, read_only=True)
    runtime = _runtime(settings, read_only=True)

    async def run() -> int:
        try:
            # A CLI run with nothing else on its loop: a blocking open() is harmless here.
            with open_output(args.output) as out:
                return await _export(runtime, args.format, since, out)
        finally:
            await runtime.close()

    count = asyncio.run(run())
    print(f"exported {count} audit entr{'y' if count == 1 else 'ies'}", file=sys.stderr)
    return EXIT_OK


def _anchors(texts: Sequence[str]) -> list[Anchor]:
    from bot.db.audit import Anchor

    try:
        return [Anchor.parse(text) for text in texts]
    except ValueError as exc:
        raise CliError(f"--anchor {exc}") from None


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from bot.services.audit import UNSIGNED_WARNING

    settings = _settings()
    anchors = _anchors(args.anchor or [])
    _check_schema(settings, read_only=True)
    runtime = _runtime(settings, read_only=True)

    async def run() -> int:
        try:
            result = await runtime.audit.verify(anchors)
        finally:
            await runtime.close()
        if result.key_problem:
            raise CliError(f"cannot verify the audit log: {result.reason}")
        if not result.ok:
            print(
                f"audit log BROKEN at entry #{result.first_bad_seq}: {result.reason} "
                f"({result.checked} entries verified before it)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        print(f"audit log intact: {result.checked} entries verified{_how(result)}")
        if not runtime.audit.signed:
            print(f"note: {UNSIGNED_WARNING}", file=sys.stderr)
        return EXIT_OK

    return asyncio.run(run())


def _how(result: ChainVerification) -> str:
    def span(first: int, last: int) -> str:
        return f"#{first}" if first == last else f"#{first} to #{last}"

    parts = []
    if result.keyed_from is not None:
        parts.append(f"{span(result.keyed_from, result.checked)} signed with GUARDRAIL_AUDIT_KEY")
    if result.unkeyed:
        parts.append(f"{span(1, result.unkeyed)} SHA-256 only")
    if result.anchors:
        parts.append(f"{result.anchors} anchor{'s' if result.anchors != 1 else ''} found")
    return f" ({'; '.join(parts)})" if parts else ""


def cmd_health(args: argparse.Namespace) -> int:
    """Run the configured checks once, as the bot would; exit 1 when anything is down."""
    from bot.services.health import UnknownService

    settings = _settings()
    # Only the checks are printed, so the database is never asked for the freeze, deploys or
    # incidents: the command works before there is one (and creates no SQLite file).
    runtime = _runtime(settings, health_context=False)

    async def run() -> int:
        try:
            report = await runtime.health.report(args.service)
        except UnknownService as exc:
            known = ", ".join(exc.known) or "none configured"
            raise CliError(f"unknown service {', '.join(exc.names)} (services: {known})") from None
        finally:
            await runtime.close()
        print(report.headline)
        width = max((len(r.service) for r in report.results), default=0)
        for result in report.results:
            latency = "-" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"
            print(f"  {result.service:<{width}}  {result.status.value:<4}  {latency:>8}  {result.reason}")
        return EXIT_FAILED if report.down else EXIT_OK

    return asyncio.run(run())


def cmd_rollback_check(args: argparse.Namespace) -> int:
    """Preview every rollback path now; exit 0 green, 1 red (posted in the deploys channel), 2 cannot run."""
    settings = _settings()
    _check_schema(settings)
    runtime = _runtime(settings, slack=settings.slack_bot_token is not None)  # red results are posted

    async def run() -> int:
        try:
            report = await runtime.rollbacks.run()
        except Exception as exc:
            raise CliError(f"the rollback check could not run: {type(exc).__name__}: {exc}") from None
        finally:
            await runtime.close()
        print(report.headline)
        for result in report.results:
            which = " (undo)" if result.path == "undo" else ""
            print(f"  {'ok ' if result.ok else 'RED'}  {result.playbook}/{result.step}{which}: {result.summary}")
            if result.fix:
                print(f"       fix: {result.fix}")
        if not report.ok:
            where = runtime.config.channels.deploys
            print(
                f"posted in {where}"
                if report.posted
                else f"could not post in {where}" + ("" if runtime.slack else " (SLACK_BOT_TOKEN is not set)"),
                file=sys.stderr,
            )
        return EXIT_OK if report.ok else EXIT_FAILED

    return asyncio.run(run())


def cmd_incident_export(args: argparse.Namespace) -> int:
    from bot.services.incidents import IncidentProblem

    settings = _settings()
    check_output_path(args.output)
    _check_schema(settings, read_only=True)
    runtime = _runtime(settings, read_only=True)

    async def run() -> str:
        try:
            return await runtime.incidents.postmortem_markdown(args.id)
        except IncidentProblem as exc:
            raise CliError(str(exc)) from None
        finally:
            await runtime.close()

    markdown = asyncio.run(run())
    with open_output(args.output) as out:
        out.write(markdown)
    if args.output and args.output != "-":
        print(f"wrote the postmortem draft of incident #{args.id} to {args.output}", file=sys.stderr)
    return EXIT_OK


EXIT_FROZEN = 3
GATE_POLICY = CallPolicy(timeout=10.0, attempts=3, backoff=0.5, deadline=30.0)


def _print_frozen(environment: str, window: dict[str, object]) -> None:
    print(
        f"FROZEN: {environment} is frozen by window #{window.get('id')} until {window.get('ends_at')}: "
        f"{window.get('reason')} (created by {window.get('created_by')})"
    )


async def _ask_api(url: str, token: str | None, environment: str, service: str | None) -> int:
    import httpx  # the gate's HTTP client; only this command needs it

    params = {"environment": environment, **({"service": service} if service else {})}
    endpoint = url.rstrip("/") + "/api/v1/freeze"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=GATE_POLICY.timeout) as client:
        try:
            response = await call_outbound(
                f"gate:{url}",
                lambda: client.get(endpoint, params=params, headers=headers),
                policy=GATE_POLICY,
                idempotent=True,
            )
        except Exception as exc:
            raise CliError(f"cannot ask {endpoint}: {type(exc).__name__}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200:
        print(f"not frozen: {environment} may deploy{f' {service}' if service else ''}")
        return EXIT_OK
    if response.status_code == 423 and isinstance(body, dict):
        _print_frozen(environment, body.get("window") or {})
        return EXIT_FROZEN
    if response.status_code == 401:
        raise CliError(f"{endpoint} refused the token (401): set GUARDRAIL_API_TOKEN to the bot's API token")
    if response.status_code == 503 and isinstance(body, dict) and "reason" in body:
        raise CliError(
            f"the freeze gate cannot tell whether {environment} may deploy ({body['reason']}): "
            "failing closed, do not deploy"
        )
    raise CliError(f"{endpoint} answered HTTP {response.status_code}: {str(body)[:300]}")


def cmd_freeze_check(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.url:
        token = settings.guardrail_api_token.get_secret_value() if settings.guardrail_api_token else None
        return asyncio.run(_ask_api(args.url, token, args.environment, args.service))
    # Pipelines are promised an answer within seconds: the schema check gets the gate's own bound.
    _check_schema(settings, read_only=True, within=settings.gate_timeout)
    runtime = _runtime(settings, read_only=True)

    async def run() -> int:
        try:
            decision = await runtime.freezes.gate(args.environment, service=args.service)
        except FreezeRefused as exc:
            raise CliError(exc.message) from None
        except GateUnavailable as exc:
            raise CliError(
                f"the freeze gate cannot tell whether {args.environment} may deploy ({exc.reason}): "
                "failing closed, do not deploy"
            ) from None
        finally:
            await runtime.close()
        if decision.window is None:
            print(f"not frozen: {args.environment} may deploy{f' {args.service}' if args.service else ''}")
            return EXIT_OK
        w = decision.window
        _print_frozen(
            args.environment,
            {"id": w.id, "ends_at": w.ends_at.isoformat(), "reason": w.reason, "created_by": w.created_by},
        )
        return EXIT_FROZEN

    return asyncio.run(run())


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guardrail", description="Freeze windows, live health answers and incident playbooks, in Slack."
    )
    parser.add_argument("--version", action="version", version=f"guardrail {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SubcommandParser)

    serve = sub.add_parser("serve", help="run the bot (HTTP server, Socket Mode if SLACK_APP_TOKEN is set)")
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=port_number, default=None, help="port (default $PORT or 3000)")
    serve.set_defaults(handler=cmd_serve)

    sandbox = sub.add_parser(
        "sandbox",
        help="try guardrail without Slack: the real bot, a simulated Slack in "
        "your browser and drills against local fakes",
    )
    sandbox.add_argument(
        "--config",
        type=Path,
        default=Path("playbooks"),
        metavar="DIR",
        help="configuration directory (default ./playbooks, the shipped one)",
    )
    sandbox.add_argument("--port", type=port_number, default=3000, help="port of the page (default 3000)")
    sandbox.add_argument("--drill", choices=["demo-day"], default=None, help="set up a scripted drill")
    sandbox.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="FILE",
        help="SQLite file to keep (default: a temporary one, removed on exit)",
    )
    sandbox.set_defaults(handler=cmd_sandbox)

    check = sub.add_parser(
        "check-config", help="validate the YAML configuration and the settings; exit 0 valid, 2 invalid"
    )
    check.add_argument("--dir", default=None, help="configuration directory (default $GUARDRAIL_CONFIG)")
    check.add_argument(
        "--yaml-only",
        action="store_true",
        help="check only the YAML, not the Slack and "
        "database settings `guardrail serve` needs (e.g. in CI without secrets)",
    )
    check.set_defaults(handler=cmd_check_config)

    migrate = sub.add_parser("migrate", help="bring the database to the latest schema")
    migrate.set_defaults(handler=cmd_migrate)

    doctor = sub.add_parser(
        "doctor",
        help="check Slack (token, scopes, channels), the database and every "
        "service; exit 0 all good, 1 something to fix, 2 cannot run",
    )
    doctor.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="slack-manifest.yml to compare scopes with (default: ./slack-manifest.yml)",
    )
    doctor.set_defaults(handler=cmd_doctor)

    health = sub.add_parser("health", help="run the health checks once; exit 0 none down, 1 something down")
    health.add_argument("service", nargs="?", default=None, help="one service (default: all)")
    health.set_defaults(handler=cmd_health)

    rollback = sub.add_parser(
        "rollback-check",
        help="preview every rollback path; exit 0 green, 1 red, 2 cannot run",
        description="Preview every step marked rollback: true or "
        "changes_production: true, and every undo: credentials, reachability, something to "
        "roll back to. Changes nothing. Red results are posted in the deploys channel.",
    )
    rollback.set_defaults(handler=cmd_rollback_check)

    audit = sub.add_parser("audit", help="export or verify the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    export = audit_sub.add_parser("export", help="write the audit log as JSON lines or CSV")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--since", default=None, help="a duration (7d) or an ISO date/time (2026-12-01)")
    export.add_argument("--output", "-o", default=None, help="file to write (default stdout)")
    export.set_defaults(handler=cmd_audit_export)
    verify = audit_sub.add_parser(
        "verify",
        help="check the hash chain; exit 0 intact, 1 broken, 2 cannot check",
        description="Check every entry's hash (HMAC with GUARDRAIL_AUDIT_KEY) and link. "
        "Each --anchor (an entry number and hash posted in audit.anchor_channel) must "
        "still be in the chain: that catches a deleted tail with a rewound head.",
    )
    verify.add_argument(
        "--anchor", action="append", metavar="SEQ:HASH", help="an anchor the chain must still contain (repeatable)"
    )
    verify.set_defaults(handler=cmd_audit_verify)
    audit.set_defaults(handler=lambda _args: _usage(audit))

    freeze = sub.add_parser("freeze", help="ask the freeze gate (for CI pipelines); create, list, cancel windows")
    freeze_sub = freeze.add_subparsers(dest="freeze_command", metavar="SUBCOMMAND")
    check_gate = freeze_sub.add_parser(
        "check",
        help="exit 0 not frozen, 3 frozen, 2 error",
        description="Ask whether a deploy may go ahead: exit 0 when not "
        "frozen, 3 when frozen (printing the window), 2 on any error.",
    )
    check_gate.add_argument("--environment", required=True, help="environment to deploy to, e.g. production")
    check_gate.add_argument("--service", default=None, help="service being deployed (break-glass exemptions)")
    check_gate.add_argument(
        "--url",
        default=None,
        help="ask a running guardrail at this URL (with $GUARDRAIL_API_TOKEN) instead of the database",
    )
    check_gate.set_defaults(handler=cmd_freeze_check)
    add_freeze_commands(freeze_sub)
    freeze.set_defaults(handler=lambda _args: _usage(freeze))

    incident = sub.add_parser("incident", help="incident records: export a postmortem draft")
    incident_sub = incident.add_subparsers(dest="incident_command", metavar="SUBCOMMAND")
    pm = incident_sub.add_parser(
        "export", help="write a postmortem draft (timeline, steps, outcomes) from the audit log"
    )
    pm.add_argument("id", type=incident_number, help="incident number, as in #12")
    pm.add_argument("--format", choices=["markdown"], default="markdown")
    pm.add_argument("--output", "-o", default=None, help="file to write (default stdout)")
    pm.set_defaults(handler=cmd_incident_export)
    incident.set_defaults(handler=lambda _args: _usage(incident))
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("guardrail")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # `serve` logs what it does; one-shot commands print their result and log only problems.
    level = logging.INFO if getattr(args, "handler", None) is cmd_serve else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every run of every job at INFO: a 1 s tick would be 170,000 lines a day.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    keep_secrets_out_of_logs()
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return _usage(parser)
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except CliError as exc:
        say(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        quiet_stdout()
        say("the output was closed before everything was written (broken pipe)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
