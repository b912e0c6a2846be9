"""Startup to a healthy `/healthz`, and idle RSS: `guardrail serve` vs a bare Bolt app under uvicorn.

Each process is spawned, `/healthz` polled every 10 ms until it answers 200 (the time from spawn to
that answer is the startup), then left idle for a few seconds (guardrail's scheduler ticks meanwhile)
and its resident set read from /proc. Both talk to the Slack stand-in; guardrail on a migrated
SQLite file with the ack benchmark's configuration.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.gate import ROOT, _wait_up
from bench.report import Comparison
from tests.support.ports import free_port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _healthy_after(proc: subprocess.Popen[bytes], url: str, started: float) -> float:
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.perf_counter() - started < 60:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
            try:
                if (await client.get(url)).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.01)
    raise RuntimeError(f"{url} did not answer 200 within 60 s")


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _measure(command: list[str], env: dict[str, str], port: int, idle: float) -> tuple[float, float]:
    """(seconds from spawn to /healthz 200, MB resident after `idle` seconds idle)."""
    started = time.perf_counter()
    proc = _spawn(command, env)
    try:
        seconds = await _healthy_after(proc, f"http://127.0.0.1:{port}/healthz", started)
        await asyncio.sleep(idle)
        return seconds, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def bench_serve(database_url: str, config: Path, *, repetitions: int, idle: float) -> list[Comparison]:
    from bench.ack_apps import SECRET, TOKEN
    from bench.gate import _serve

    startup = Comparison(
        "startup to `/healthz` 200 (spawn → first 200)", "bare Bolt + /healthz under uvicorn", "s", "—"
    )
    rss = Comparison(f"idle RSS, {idle:.0f} s after healthy", "bare Bolt + /healthz under uvicorn", "MB", "—")
    standin_port = free_port()
    standin = f"http://127.0.0.1:{standin_port}"
    stand_in = _serve("bench.ack_apps:standin", standin_port, {"BENCH_STANDIN_URL": standin})
    try:
        await _wait_up(f"{standin}/api/api.test")
        for _ in range(repetitions):
            port = free_port()
            bare = await _measure(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "bench.ack_apps:bare_health",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                {"BENCH_STANDIN_URL": standin},
                port,
                idle,
            )
            port = free_port()
            ours = await _measure(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                {
                    "DATABASE_URL": database_url,
                    "GUARDRAIL_CONFIG": str(config),
                    "SLACK_BOT_TOKEN": TOKEN,
                    "SLACK_SIGNING_SECRET": SECRET,
                    "SLACK_API_URL": standin + "/api/",
                    "SLACK_APP_TOKEN": "",
                    "GUARDRAIL_AUDIT_KEY": "",
                },
                port,
                idle,
            )
            startup.pairs.append((bare[0], ours[0]))
            rss.pairs.append((bare[1], ours[1]))
    finally:
        stand_in.terminate()
        stand_in.wait(timeout=10)
    return [startup, rss]
