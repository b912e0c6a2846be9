"""The shipped playbook's steps become actions whose confirm text says exactly what will happen."""

from __future__ import annotations

import builtins
import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from bot.actions import build_action, build_undo
from bot.config.loader import load_config
from tests.support.paths import ROOT

ENV = {
    "DEPLOY_HOOK": "https://deploy.example.com",
    "APP_DATABASE_URL": "postgres://db.internal/app",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def test_every_shipped_step_builds_and_describes_itself() -> None:
    playbook = load_config(ROOT / "playbooks", ENV).config.playbooks[0]
    described = {step.id: build_action(step.action, step=step).describe() for step in playbook.steps}
    assert described == {
        "rollback": "POST https://deploy.example.com/rollback for service api",
        "disable-worker": "Scale acme-prod worker dynos to 0",
        "scale-down": "Scale Deployment prod/api-consumer to 0 replicas",
        "verify": "Run health checks of database, jobs",
        "replay": "Requeue failed jobs of RQ queue default at most 50 per second",
    }
    undo = {step.id: build_undo(step, {"previous_quantity": 2, "previous_replicas": 5}) for step in playbook.steps}
    assert {k: v.describe() for k, v in undo.items() if v is not None} == {
        "disable-worker": "Scale acme-prod worker dynos to 2",
        "scale-down": "Scale Deployment prod/api-consumer to 5 replicas",
    }


def test_actions_import_without_slack_or_a_database() -> None:
    probe = (
        "import sys, bot.actions; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk', 'sqlalchemy', "
        "'sqlmodel', 'alembic', 'starlette') or m.startswith(('bot.slack', 'bot.db', 'bot.web'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_building_and_describing_every_shipped_action_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    """describe() runs on every playbook render and inside the claim transaction: no network, no files."""
    playbook = load_config(ROOT / "playbooks", ENV).config.playbooks[0]
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise AssertionError(f"describe() must not {what}")

        return refused

    monkeypatch.setattr(socket, "getaddrinfo", refuse("resolve a name"))
    monkeypatch.setattr(socket, "create_connection", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(builtins, "open", refuse("open a file"))
    monkeypatch.setattr(io, "open", refuse("open a file"))
    monkeypatch.setattr(os, "open", refuse("open a file"))
    remembered = {
        "previous_quantity": 2,
        "previous_replicas": 5,
        "previous_release_id": "r-1",
        "previous_version": 41,
        "previous_replicaset": "api-7d9f",
    }
    described = []
    for step in playbook.steps:
        described.append(build_action(step.action, step=step).describe())
        undo = build_undo(step, remembered)
        if undo is not None:
            described.append(undo.describe())
    assert attempts == [] and len(described) >= len(playbook.steps)
