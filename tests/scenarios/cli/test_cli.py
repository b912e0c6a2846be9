"""The `guardrail` command as a person or a pipeline runs it."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from bot.db.urls import sync_url
from tests.support.cli import run
from tests.support.paths import ROOT


def test_help_for_every_command() -> None:
    for args in ([], ["serve"], ["check-config"], ["migrate"], ["audit"], ["audit", "export"], ["audit", "verify"]):
        result = run(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: guardrail" in result.stdout


def test_shipped_configuration_passes_check_config() -> None:
    result = run("check-config", "--yaml-only")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    ready = run("check-config", env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert ready.returncode == 0, ready.stderr
    assert "configuration OK" in ready.stdout and "settings OK: Slack over HTTP" in ready.stdout


def test_a_broken_copy_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", broken)
    path = next(broken.glob("*.yaml"))
    source = path.read_text()
    source = source.replace("id: verify", "id: rollback", 1)  # duplicate step id
    source = source.replace("timeout: 2s", "timeout: 2 parsecs", 1)  # bad duration
    source = source.replace("slow_after: 500ms", "slow_after: 500ms\n    tiemout: 1s", 1)  # unknown key
    path.write_text(source)

    # A clean environment: APP_DATABASE_URL is not set at all.
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "GUARDRAIL_CONFIG": str(broken),
            "DEPLOY_HOOK": "https://deploy.example.com",
        },
    )
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    assert "APP_DATABASE_URL is not set" in err
    assert "services[1].sql.url" in err
    assert "rollback" in err and "duplicate" in err.lower()
    assert "parsecs" in err or "not a duration" in err
    assert "tiemout" in err


def test_serve_refuses_an_invalid_configuration_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("channels: {deploys: nope}\n")
    result = run(
        "serve", env={"GUARDRAIL_CONFIG": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "channels.deploys" in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = run("serve", env={"DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert result.returncode == 2
    assert "not migrated" in result.stderr and "guardrail migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_names_missing_slack_settings(tmp_path: Path) -> None:
    result = run("serve", env={"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""})
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr


def test_migrate_export_and_verify(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    assert run("migrate", env=env).returncode == 0
    assert run("migrate", env=env).returncode == 0  # idempotent

    engine = create_engine(sync_url(database_url))
    from bot.db.audit import GENESIS_HASH  # noqa: F401  (ensures module import works standalone)

    subprocess.run(
        [sys.executable, "-m", "tests.support.audit_writer", database_url, "3", "cli"], check=True, cwd=ROOT, timeout=60
    )

    exported = run("audit", "export", "--format", "jsonl", env=env)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["subject"] for r in rows] == ["cli-0", "cli-1", "cli-2"]
    assert rows[1]["prev_hash"] == rows[0]["hash"]

    as_csv = run("audit", "export", "--format", "csv", "--since", "1d", env=env)
    assert as_csv.returncode == 0
    assert [r["subject"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == ["cli-0", "cli-1", "cli-2"]

    assert run("audit", "export", "--since", "someday", env=env).returncode == 2

    intact = run("audit", "verify", env=env)
    assert intact.returncode == 0 and "3 entries verified" in intact.stdout

    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET details = '{\"i\": 99}' WHERE seq = 2"))
    engine.dispose()
    broken = run("audit", "verify", env=env)
    assert broken.returncode == 1
    assert "entry #2" in broken.stderr


def _bare_env(**extra: str) -> dict[str, str]:
    """Only PATH and PYTHONPATH: nothing from the developer's shell leaks into the command."""
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **extra}


def test_dot_env_fills_the_playbooks_variables_too(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    (tmp_path / ".env").write_text(
        (ROOT / ".env.example").read_text() + "SLACK_BOT_TOKEN=xoxb-1\nSLACK_SIGNING_SECRET=s\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_bare_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_placeholder_slack_secrets_are_refused(tmp_path: Path) -> None:
    result = run("serve", env={"SLACK_BOT_TOKEN": "xoxb-...", "SLACK_SIGNING_SECRET": "..."})
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is still a placeholder" in result.stderr
    assert "SLACK_SIGNING_SECRET is still a placeholder" in result.stderr


def test_migrate_against_an_unreachable_database_says_so_in_one_line() -> None:
    result = run("migrate", env={"DATABASE_URL": "postgres://postgres:hunter2@127.0.0.1:1/nope"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot reach the database at postgres://postgres:***@127.0.0.1:1/nope" in result.stderr
    assert "hunter2" not in result.stderr


def test_an_unmigrated_database_lists_every_missing_revision(tmp_path: Path) -> None:
    result = run(
        "serve",
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
        },
    )
    assert "0001_core" in result.stderr and "0002_freeze" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("guardrail ")
