"""`guardrail serve` as a real subprocess (`python -m bot serve`) that a test can start, kill -9 and restart."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.db import migrate
from tests.support.bot import SIGNING_SECRET
from tests.support.paths import ROOT
from tests.support.ports import free_port

START_SECONDS = 30.0  # an interpreter start on a loaded 2-core machine
STOP_SECONDS = 10.0  # SIGTERM to exit; then SIGKILL
PORT_ATTEMPTS = 3  # a free port can be taken by another process before the bot binds it


@dataclass
class ServeProcess:
    proc: asyncio.subprocess.Process
    url: str
    log: Path

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed — a crash or an OOM kill."""
        self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within STOP_SECONDS."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=STOP_SECONDS)
            except TimeoutError:
                await self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _log_since(log: Path, offset: int) -> bytes:
    with log.open("rb") as f:
        f.seek(offset)
        return f.read()


class PortTaken(Exception):
    """The port chosen was taken by another process before the bot could bind it."""


async def start_serve(env: dict[str, str], log: Path) -> ServeProcess:
    """Start `python -m bot serve` on a free port and return once `/healthz` answers."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return await _start_serve_once(env, log)
        except PortTaken:
            if attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _start_serve_once(env: dict[str, str], log: Path) -> ServeProcess:
    port = free_port()
    full = {**os.environ, "PYTHONPATH": str(ROOT), "PORT": str(port), **env}
    with log.open("ab") as sink:  # a file, not a pipe: a pipe nobody reads would block the bot
        before = sink.tell()  # earlier starts' output is in the same file
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", env=full, cwd=ROOT, stdout=sink, stderr=sink
        )
    process = ServeProcess(proc, f"http://127.0.0.1:{port}", log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_SECONDS
    async with httpx.AsyncClient(base_url=process.url) as http:
        while loop.time() < deadline:
            if proc.returncode is not None:
                if b"address already in use" in _log_since(log, before).lower():
                    raise PortTaken(port)
                raise AssertionError(f"guardrail serve exited ({proc.returncode}):\n{process.output()}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # polling a process coming up: nothing to await instead
    await process.stop()
    raise AssertionError(f"guardrail serve did not answer /healthz within {START_SECONDS:g}s:\n{process.output()}")


def shipped_env(tmp_path: Path) -> dict[str, str]:
    """`guardrail serve` with the shipped playbooks, a migrated SQLite database and a Slack nobody answers."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    migrate.upgrade(url)
    return {
        "DATABASE_URL": url,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",
        "SLACK_APP_TOKEN": "",
        "GUARDRAIL_CONFIG": str(ROOT / "playbooks"),
        "APP_DATABASE_URL": "postgres://x@127.0.0.1/db",
        "DEPLOY_HOOK": "https://deploy.example.com",
    }


@asynccontextmanager
async def serving(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """`guardrail serve` for the length of the block; yields its base URL."""
    process = await start_serve(env, log)
    try:
        yield process.url
    finally:
        await process.stop()
