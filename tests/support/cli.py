"""`guardrail` as a person runs it: a subprocess with the environment of someone who copied .env.example."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values

from tests.support.paths import ROOT

# Variables a developer's shell may hold that would change what the command under test sees.
CLEARED = ("SLACK_", "GUARDRAIL_", "DATABASE_URL", "HEROKU_")


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment minus guardrail's own variables, plus .env.example, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    base.update({k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()})
    base["PYTHONPATH"] = str(ROOT)
    base.update(env or {})
    return base


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bot *args`, blocking: for tests that run no fake on their own event loop."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=cwd or ROOT,
        timeout=60,
    )


async def run_awaited(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m bot *args`, awaited, so the fakes served on this loop keep answering it: (code, out, err)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=cli_env(env),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
