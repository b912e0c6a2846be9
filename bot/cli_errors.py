"""How the `guardrail` command turns bad input into one line and exit code 2, never a traceback.

Arguments are checked where argparse can (incident numbers, unknown flags with the subcommand's own
usage); files, databases and settings are checked before any work starts; a reader that goes away
early (`guardrail audit export | head`) ends the command quietly instead of with a BrokenPipeError.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # `guardrail --help` should not pay for pydantic and SQLAlchemy
    from bot.settings import Settings

MAX_INCIDENT_ID = 2**31 - 1
"""Incident ids are an INTEGER column: 32 bits on PostgreSQL (SQLite would hold 64)."""

READ_ONLY_SKIPS = ("services", "playbooks", "health")
"""Configuration sections read-only commands never use: their `${VAR}`s need not be set."""


class CliError(Exception):
    """A problem to print on one line, followed by exit code 2."""


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: it reports arguments it does not know with its own usage.

    argparse leaves unknown arguments to the top-level parser, which prints `usage: guardrail
    [-h] [--version] COMMAND ...` — no help to someone who mistyped a flag of `audit export`. The
    innermost subcommand parses first, so it is the one that complains.
    """

    def parse_known_args(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def incident_number(text: str) -> int:
    """argparse type for an incident number: a whole number the database's id column can hold."""
    try:
        number = int(text.strip().lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an incident number (write it as in #12)") from None
    if not 1 <= number <= MAX_INCIDENT_ID:
        raise argparse.ArgumentTypeError(f"{text!r}: incident numbers run from 1 to {MAX_INCIDENT_ID}")
    return number


def port_number(text: str) -> int:
    """argparse type for --port: 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a number from 1 to 65535")
    return port


def check_listen(host: str, port: int) -> None:
    """Refuse a host or port `serve` cannot listen on, before the bot starts and its ticks run.

    uvicorn binds only after the application started up, then stops it again: a mistyped host
    or a port in use would end in a shutdown's worth of log lines instead of one.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def check_output_path(path: str | None) -> None:
    """Refuse an `-o` that cannot be written before doing any work (a directory, a missing folder)."""
    if not path or path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise CliError(f"-o {path}: is a directory; name a file to write, e.g. {target / 'out.txt'}")
    parent = target.parent
    if not parent.is_dir():
        raise CliError(f"-o {path}: the directory {parent} does not exist")


@contextmanager
def open_output(path: str | None) -> Iterator[TextIO]:
    """The file to write (stdout for none or `-`); a full disk or an unwritable file becomes one line.

    A closed pipe on stdout is left to `main`, which ends quietly.
    """
    if not path or path == "-":
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            quiet_stdout()  # what is still buffered would fail again at exit
            raise CliError(f"cannot write the output: {exc.strerror or exc}") from None
        return
    check_output_path(path)
    try:
        out = open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"-o {path}: cannot write: {exc.strerror or exc}") from None
    try:
        with out:
            yield out
    except OSError as exc:
        raise CliError(f"-o {path}: cannot write: {exc.strerror or exc}") from None


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL points at; None for other databases and in-memory SQLite."""
    from bot.db.urls import UnsupportedDatabaseURL, sync_url

    try:
        parsed = sync_url(url)
    except UnsupportedDatabaseURL:
        return None
    if parsed.get_backend_name() != "sqlite" or _in_memory(parsed.database, parsed.query.get("mode")):
        return None
    database = parsed.database or ""
    return None if database.startswith("file:") else Path(database)  # file: URIs are left to SQLite


def _in_memory(database: str | None, mode: object) -> bool:
    return database in (None, "", ":memory:") or mode == "memory"


def require_database(url: str) -> None:
    """Refuse to open a SQLite file that is not there: connecting would create an empty one."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise CliError(
            f"no database at {path}: run `guardrail migrate` to create it, or point DATABASE_URL at the existing one"
        )


def settings_problems(settings: Settings) -> list[str]:
    """What would stop `guardrail migrate` and `guardrail serve` with these settings, in the environment's words."""
    from bot.db.urls import UnsupportedDatabaseURL, async_url, sync_url

    problems = list(settings.slack_problems())
    try:
        sync_url(settings.database_url)
        async_url(settings.database_url)
    except UnsupportedDatabaseURL as exc:
        problems.append(f"DATABASE_URL: {exc}")
        return problems
    path = sqlite_file(settings.database_url)
    parsed = sync_url(settings.database_url)
    if parsed.get_backend_name() == "sqlite" and _in_memory(parsed.database, parsed.query.get("mode")):
        problems.append(
            "DATABASE_URL: an in-memory SQLite database keeps nothing once guardrail stops: name a "
            "file, e.g. sqlite:///guardrail.db"
        )
    elif path is not None and path.is_dir():
        problems.append(f"DATABASE_URL: {path} is a directory: name the SQLite file, e.g. {path / 'guardrail.db'}")
    elif path is not None and not path.absolute().parent.is_dir():
        problems.append(f"DATABASE_URL: the directory {path.absolute().parent} for the SQLite file does not exist")
    return problems


def quiet_stdout() -> None:
    """After the reader of stdout went away: send what is left nowhere, so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. under pytest's capture)
        pass


def say(message: str) -> None:
    """Print a problem to stderr; stderr itself may be the pipe that closed."""
    try:
        print(f"guardrail: {message}", file=sys.stderr)
    except OSError:
        pass
