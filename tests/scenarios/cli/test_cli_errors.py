"""Bad input to `guardrail`: one line on stderr and exit 2, never a traceback.

Each test drives the real command — `bot.cli.main` in this process, or `python -m bot` in a
subprocess where a pipe or argparse's own exit is the point.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_config
from bot.db import migrate
from bot.runtime import build_runtime
from bot.settings import Settings
from tests.support.bot import write_config
from tests.support.paths import ROOT

PLAYBOOK_WITH_SECRETS = """\
services:
  - name: app-db
    sql: {url: "${APP_DATABASE_URL}"}
playbooks:
  - name: outage
    steps:
      - id: rollback
        label: Roll back
        action: {http: {url: "${DEPLOY_HOOK}/rollback"}}
"""


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database and the environment `guardrail` reads (no Slack, no .env); yields the URL."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "GUARDRAIL_AUDIT_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "APP_DATABASE_URL",
        "DEPLOY_HOOK",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GUARDRAIL_CONFIG", str(write_config(tmp_path / "config")))
    migrate.upgrade(database_url)
    yield database_url


def declare_incident(database_url: str, config_dir: Path) -> int:
    """An incident in the database, as `/incident declare` leaves it."""

    async def run() -> int:
        settings = Settings(_env_file=None, database_url=database_url, guardrail_config=config_dir)
        runtime = build_runtime(settings, load_config(config_dir, {}))
        try:
            incident = await runtime.incidents.declare(
                title="API returns 500s", severity="sev2", commander="U0CAROL", playbook=None, declared_in=None
            )
            return incident.id
        finally:
            await runtime.close()

    return asyncio.run(run())


def guardrail(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` with only this environment (nothing from the developer's shell or .env)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
    )


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("guardrail")]
    assert len(lines) == 1, err
    return lines[0]


# --- output ---------------------------------------------------------------------------------


def test_export_into_a_reader_that_stops_early_ends_quietly(sqlite_url: str, tmp_path: Path) -> None:
    """`guardrail audit export | head -1`: the reader goes away after one line."""
    migrate.upgrade(sqlite_url)
    subprocess.run(
        [sys.executable, "-m", "tests.support.audit_writer", sqlite_url, "600", "pipe"],
        check=True,
        cwd=ROOT,
        timeout=120,
    )  # ~180 kB of JSON lines: more than a pipe holds
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": sqlite_url,
        "GUARDRAIL_CONFIG": str(write_config(tmp_path / "config")),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "audit", "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    ) as process:  # closes both pipes on the way out
        assert process.stdout is not None and process.stderr is not None
        assert '"seq": 1' in process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read()
        assert process.wait(timeout=60) == 2
    assert "broken pipe" in one_line_error(err)


@pytest.mark.parametrize("command", [["audit", "export"], ["incident", "export", "1"]])
def test_output_into_a_directory_or_a_missing_one_is_refused(
    cli_env: str, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    declare_incident(cli_env, tmp_path / "config")
    assert main([*command, "-o", str(tmp_path)]) == 2
    assert f"-o {tmp_path}: is a directory" in one_line_error(capsys.readouterr().err)

    missing = tmp_path / "no" / "such" / "dir" / "out.txt"
    assert main([*command, "-o", str(missing)]) == 2
    assert f"the directory {missing.parent} does not exist" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "no").exists()

    written = tmp_path / "out.txt"
    assert main([*command, "-o", str(written)]) == 0
    assert written.read_text()


@pytest.mark.parametrize("command", [["audit", "export"], ["incident", "export", "1"]])
def test_a_full_disk_is_one_line(
    cli_env: str, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    declare_incident(cli_env, tmp_path / "config")
    assert main([*command, "-o", "/dev/full"]) == 2
    assert "-o /dev/full: cannot write: No space left on device" in one_line_error(capsys.readouterr().err)

    with open("/dev/full", "w") as full:  # `guardrail audit export > /dev/full`
        result = subprocess.run(
            [sys.executable, "-m", "bot", *command],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={
                "PATH": os.environ["PATH"],
                "PYTHONPATH": str(ROOT),
                "DATABASE_URL": cli_env,
                "GUARDRAIL_CONFIG": str(tmp_path / "config"),
            },
        )
    assert result.returncode == 2
    assert "cannot write the output: No space left on device" in one_line_error(result.stderr)


# --- incident numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "0", "-3", "twelve"])
def test_an_incident_number_the_database_cannot_hold_is_refused(cli_env: str, tmp_path: Path, number: str) -> None:
    result = guardrail(
        "incident",
        "export",
        "--",
        number,
        cwd=tmp_path,
        env={"DATABASE_URL": cli_env, "GUARDRAIL_CONFIG": str(tmp_path / "config")},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: guardrail incident export")
    assert "argument id:" in result.stderr


def test_the_largest_incident_number_reaches_the_database(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incident", "export", "2147483647"]) == 2
    assert "There is no incident #2147483647" in one_line_error(capsys.readouterr().err)


# --- read-only commands and the playbooks' ${VAR}s ------------------------------------------


def test_read_only_commands_run_without_the_playbooks_variables(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CI asks the freeze gate without the deploy hook's secret; an auditor verifies without the app's DB."""
    number = declare_incident(cli_env, tmp_path / "config")
    config = write_config(tmp_path / "config", PLAYBOOK_WITH_SECRETS)

    assert main(["freeze", "check", "--environment", "production"]) == 0
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "export"]) == 0
    assert main(["incident", "export", str(number)]) == 0
    captured = capsys.readouterr()
    assert "not frozen: production may deploy" in captured.out
    assert "audit log intact" in captured.out
    assert "API returns 500s" in captured.out
    assert "APP_DATABASE_URL" not in captured.err and "DEPLOY_HOOK" not in captured.err

    # What does use them still insists, naming the variables.
    for command in (["health"], ["check-config", "--yaml-only", "--dir", str(config)]):
        with pytest.raises(SystemExit) as exited:
            main(command)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "APP_DATABASE_URL is not set" in err and "DEPLOY_HOOK is not set" in err


# --- a database that is not there -------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "verify"],
        ["audit", "export"],
        ["incident", "export", "1"],
        ["freeze", "check", "--environment", "production"],
    ],
)
def test_read_only_commands_refuse_a_missing_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    monkeypatch.setenv("GUARDRAIL_CONFIG", str(write_config(tmp_path / "config")))
    assert main(command) == 2
    assert f"no database at {missing}" in one_line_error(capsys.readouterr().err)
    assert not missing.exists()


# --- argparse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "usage", "message"),
    [
        (["audit", "export", "--bogus"], "usage: guardrail audit export", "unrecognized arguments: --bogus"),
        (["audit", "--bogus", "verify"], "usage: guardrail audit ", "unrecognized arguments: --bogus"),
        (
            ["freeze", "check", "--environment", "production", "--nope"],
            "usage: guardrail freeze check",
            "unrecognized arguments: --nope",
        ),
        (["incident", "export", "1", "2"], "usage: guardrail incident export", "unrecognized arguments: 2"),
        (["health", "api", "database"], "usage: guardrail health", "unrecognized arguments: database"),
        (["migrate", "now"], "usage: guardrail migrate", "unrecognized arguments: now"),
        (["serve", "--port", "99999"], "usage: guardrail serve", "a port is a number from 1 to 65535"),
        (["serve", "--port", "0"], "usage: guardrail serve", "a port is a number from 1 to 65535"),
        (["bogus"], "usage: guardrail [-h]", "invalid choice: 'bogus'"),
    ],
    ids=[
        "audit-export-flag",
        "audit-flag",
        "freeze-check-flag",
        "incident-export-extra",
        "health-extra",
        "migrate-extra",
        "serve-port-too-big",
        "serve-port-zero",
        "unknown-command",
    ],
)
def test_a_wrong_argument_prints_the_usage_of_its_own_subcommand(
    tmp_path: Path, args: list[str], usage: str, message: str
) -> None:
    result = guardrail(*args, cwd=tmp_path, env={})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(usage), result.stderr
    assert message in result.stderr


def test_every_help_works(tmp_path: Path) -> None:
    for args in (
        [],
        ["serve"],
        ["check-config"],
        ["migrate"],
        ["health"],
        ["audit"],
        ["audit", "export"],
        ["audit", "verify"],
        ["freeze"],
        ["freeze", "check"],
        ["incident"],
        ["incident", "export"],
    ):
        result = guardrail(*args, "--help", cwd=tmp_path, env={})
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith(f"usage: guardrail {' '.join(args)}".rstrip())


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_since_outside_the_calendar_is_one_line(cli_env: str, since: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "export", "--since", since]) == 2
    assert "that date is out of range" in one_line_error(capsys.readouterr().err)


def test_serve_refuses_a_port_in_use_before_starting(sqlite_url: str, tmp_path: Path) -> None:
    migrate.upgrade(sqlite_url)
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = guardrail(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=tmp_path,
            env={
                "DATABASE_URL": sqlite_url,
                "GUARDRAIL_CONFIG": str(write_config(tmp_path / "c")),
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s",
                "SLACK_API_URL": "http://127.0.0.1:1/api/",
            },
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(result.stderr)
    assert "Application startup" not in result.stderr  # refused before the bot started


# --- check-config and the settings `make run` needs --------------------------------------------


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_BOT_TOKEN": "xoxp-1", "SLACK_SIGNING_SECRET": "s"}, "must be a bot token starting with xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN must be an app-level token"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "mysql://db/app"},
            "DATABASE_URL: unsupported database scheme 'mysql'",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "not a url"},
            "DATABASE_URL: not a database URL",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "sqlite:////no/such/dir/g.db"},
            "the directory /no/such/dir for the SQLite file does not exist",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "sqlite:///tmp"},
            "DATABASE_URL: tmp is a directory",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "sqlite://"},
            "an in-memory SQLite database keeps nothing",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "postgres://db:5432x/app"},
            "DATABASE_URL: not a database URL: 'postgres://db:5432x/app'",
        ),
    ],
    ids=[
        "no-slack",
        "no-signing-secret",
        "user-token",
        "bot-token-as-app-token",
        "mysql",
        "not-a-url",
        "missing-directory",
        "directory",
        "in-memory",
        "bad-port",
    ],
)
def test_check_config_is_not_ok_when_serve_would_refuse_the_settings(
    tmp_path: Path, env: dict[str, str], problem: str
) -> None:
    env = {"GUARDRAIL_CONFIG": str(write_config(tmp_path / "config")), **env}
    (tmp_path / "tmp").mkdir()
    checked = guardrail("check-config", cwd=tmp_path, env=env)
    assert checked.returncode == 2
    assert "configuration OK" not in checked.stdout
    line = one_line_error(checked.stderr)
    assert problem in line and "--yaml-only" in line

    assert guardrail("check-config", "--yaml-only", cwd=tmp_path, env=env).returncode == 0


@pytest.mark.parametrize("command", [["migrate"], ["audit", "verify"], ["freeze", "check", "--environment", "x"]])
def test_a_database_url_with_a_bad_port_is_one_line(tmp_path: Path, command: list[str]) -> None:
    result = guardrail(
        *command,
        cwd=tmp_path,
        env={
            "DATABASE_URL": "postgres://u:pw@db:5432x/app",
            "GUARDRAIL_CONFIG": str(write_config(tmp_path / "config")),
        },
    )
    assert result.returncode == 2
    line = one_line_error(result.stderr)
    assert "DATABASE_URL: not a database URL" in line and "pw" not in line


def test_check_config_ok_means_serve_gets_past_its_settings(tmp_path: Path, sqlite_url: str) -> None:
    """Socket Mode needs no signing secret: check-config agrees with serve, which starts until it
    finds the database unmigrated (the step `make run` does first)."""
    env = {
        "GUARDRAIL_CONFIG": str(write_config(tmp_path / "config")),
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
        "DATABASE_URL": sqlite_url,
    }
    checked = guardrail("check-config", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "settings OK: Slack over Socket Mode" in checked.stdout
    served = guardrail("serve", cwd=tmp_path, env=env)
    assert served.returncode == 2
    assert "not migrated" in one_line_error(served.stderr)


def test_check_config_lists_settings_and_yaml_problems_together(tmp_path: Path) -> None:
    broken = write_config(tmp_path / "config", "timezone: Mars/Olympus\n")
    (broken / "base.yaml").write_text((broken / "base.yaml").read_text().replace("timezone: Europe/Berlin\n", ""))
    result = guardrail("check-config", cwd=tmp_path, env={"GUARDRAIL_CONFIG": str(broken)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown time zone 'Mars/Olympus'" in result.stderr
    assert "guardrail: settings: SLACK_BOT_TOKEN is not set" in result.stderr
