"""`guardrail health [service]`: the bot's checks from a shell, with an exit code for scripts."""

from __future__ import annotations

from pathlib import Path

from tests.support.bot import write_config
from tests.support.cli import run
from tests.support.ports import free_port


def test_health_prints_each_service_and_exits_1_when_something_is_down(tmp_path: Path) -> None:
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
