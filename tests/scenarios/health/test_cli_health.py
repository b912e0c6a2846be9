"""`guardrail health [service]`: the bot's checks from a shell, with an exit code for scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.bot import write_config
from tests.support.cli import run
from tests.support.databases import postgres_schema_url
from tests.support.ports import free_port


def test_health_prints_each_service_and_exits_1_when_something_is_down(tmp_path: Path) -> None:
    config, port = _up_and_down(tmp_path)
    env = {"GUARDRAIL_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}

    everything = run("health", env=env)
    assert everything.returncode == 1, everything.stderr
    lines = everything.stdout.splitlines()
    assert lines[0] == "1 of 2 down: dead-cache"
    assert lines[1].split()[:2] == ["ledger", "up"] and lines[1].endswith("SELECT 1 ok")
    assert lines[2].split()[:2] == ["dead-cache", "down"]
    assert lines[2].endswith(f"connection refused on port {port}")

    one = run("health", "ledger", env=env)
    assert (one.returncode, one.stdout.splitlines()[0]) == (0, "ledger is up")

    unknown = run("health", "ledgr", env=env)
    assert unknown.returncode == 2
    assert "unknown service ledgr (services: ledger, dead-cache)" in unknown.stderr


def _up_and_down(tmp_path: Path) -> tuple[Path, int]:
    """A configuration with one service up (a SQLite file it opens) and one on a refused port."""
    port = free_port()
    config = write_config(
        tmp_path / "config",
        f"""
        services:
          - name: ledger
            sql: {{url: "sqlite:///{tmp_path / "ledger.db"}"}}
          - name: dead-cache
            tcp: {{host: 127.0.0.1, port: {port}}}
            timeout: 1s
    """,
    )
    return config, port


def _assert_checks_only(result: subprocess.CompletedProcess[str], port: int) -> None:
    """The probes' answer, exactly as with a database, and not a word on stderr."""
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0] == "1 of 2 down: dead-cache"
    assert lines[1].split()[:2] == ["ledger", "up"] and lines[1].endswith("SELECT 1 ok")
    assert lines[2].split()[:2] == ["dead-cache", "down"]
    assert lines[2].endswith(f"connection refused on port {port}")
    assert result.stderr == ""


def test_health_before_the_database_exists_runs_the_checks_and_creates_no_file(tmp_path: Path) -> None:
    config, port = _up_and_down(tmp_path)
    missing = tmp_path / "not-yet" / "guardrail.db"
    missing.parent.mkdir()

    result = run("health", env={"GUARDRAIL_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{missing}"})

    _assert_checks_only(result, port)
    assert list(missing.parent.iterdir()) == []  # no empty SQLite file left behind


def test_health_against_a_postgres_that_is_not_migrated_runs_the_checks_quietly(tmp_path: Path) -> None:
    config, port = _up_and_down(tmp_path)
    with postgres_schema_url() as url:  # reachable, with none of guardrail's tables
        result = run("health", env={"GUARDRAIL_CONFIG": str(config), "DATABASE_URL": url})

    _assert_checks_only(result, port)


def test_health_while_the_database_is_down_runs_the_checks_quietly(tmp_path: Path) -> None:
    config, port = _up_and_down(tmp_path)
    nothing_there = f"postgresql://postgres@127.0.0.1:{free_port()}/guardrail"

    result = run("health", env={"GUARDRAIL_CONFIG": str(config), "DATABASE_URL": nothing_there})

    _assert_checks_only(result, port)
