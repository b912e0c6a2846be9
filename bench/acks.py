"""Slash-command ack latency at 1 and 10 concurrent users: guardrail vs a bare Bolt AsyncApp that only
acks (and the ack + one respond() control). Every app runs under uvicorn in its own process; the
Slack stand-in (Web API, response_urls) runs in another. Latency is the signed POST's round trip."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

from bench.gate import _percentile, _serve, _wait_up
from bench.report import Comparison
from bot.sandbox.standin.client import compute_signature
from bot.sandbox.standin.payloads import slash_form
from tests.support.ports import free_port

CONFIG = """\
timezone: Europe/Berlin
channels: {deploys: C0DEPLOYS}
freeze: {environments: [production, staging], reminders: [10m], max_duration: 7d}
services:
  - {name: standin, tcp: {host: 127.0.0.1, port: PORT}}
"""
APPS = {
    "bare": "bench.ack_apps:bare_ack",
    "respond": "bench.ack_apps:bare_respond",
    "shared": "bench.ack_apps:bare_respond_shared",
    "guardrail": "bench.ack_apps:guardrail",
}


def signed(body: bytes, content_type: str) -> dict[str, str]:
    from bench.ack_apps import SECRET

    ts = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": compute_signature(SECRET, ts, body),
    }


def command_body(standin: str, command: str, text: str, user: int, n: int) -> bytes:
    form = slash_form(
        command,
        text,
        team_id="T0BENCH",
        user_id=f"U0USER{user}",
        user_name=f"user{user}",
        channel_id="C0GENERAL",
        channel_name="general",
        trigger_id=f"{user}.{n}.trigger",
        response_url=f"{standin}/response/bench-{user}-{n}",
    )
    return urlencode(form).encode()


async def _post(session: object, url: str, standin: str, command: str, text: str, user: int, n: int) -> float:
    body = command_body(standin, command, text, user, n)
    headers = signed(body, "application/x-www-form-urlencoded")
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:  # type: ignore[attr-defined]
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return time.perf_counter() - started


async def ack_p99(url: str, standin: str, command: str, text: str, users: int, per_user: int) -> float:
    """p99 ack latency in ms of `users` users each sending `per_user` commands one after another."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users)) as session:

        async def user(u: int) -> list[float]:
            return [await _post(session, url, standin, command, text, u, n) for n in range(per_user)]

        timings = [t for per in await asyncio.gather(*(user(u) for u in range(users))) for t in per]
    return _percentile(timings, 0.99) * 1000


@contextlib.asynccontextmanager
async def servers(
    database_url: str, tmp: Path, *, warm_up: int = 10
) -> AsyncIterator[tuple[str, dict[str, str], dict[str, int]]]:
    """The stand-in and the three apps, started once; yields (stand-in URL, {app: events URL}, {app: pid})."""
    standin_port = free_port()
    standin = f"http://127.0.0.1:{standin_port}"
    config = tmp / "acks-config"
    config.mkdir(exist_ok=True)
    (config / "guardrail.yaml").write_text(CONFIG.replace("PORT", str(standin_port)))
    env = {"BENCH_STANDIN_URL": standin, "BENCH_DATABASE_URL": database_url, "BENCH_CONFIG": str(config)}
    ports = {name: free_port() for name in APPS}
    procs = [_serve("bench.ack_apps:standin", standin_port, env)]
    procs += [_serve(factory, ports[name], env) for name, factory in APPS.items()]
    try:
        urls = {name: f"http://127.0.0.1:{port}/slack/events" for name, port in ports.items()}
        await _wait_up(f"{standin}/api/api.test")
        for url in urls.values():
            await _wait_up(url)
            await ack_p99(url, standin, "/freeze", "list", 2, warm_up)  # auth.test, connections, caches
        yield standin, urls, {name: proc.pid for name, proc in zip(APPS, procs[1:], strict=True)}
    finally:
        for proc in reversed(procs):  # the stand-in last: answers still in flight reach it
            proc.terminate()
            proc.wait(timeout=10)


async def bench_acks(
    database_url: str, backend: str, tmp: Path, *, repetitions: int, per_user: int
) -> list[Comparison]:
    cases = [(command, text, users) for command, text in (("/freeze", "list"), ("/health", "")) for users in (1, 10)]

    def label(case: tuple[str, str, int]) -> str:
        command, text, users = case
        return f"ack p99, `{command}{' ' + text if text else ''}`, {users} user{'s' if users > 1 else ''}, {backend}"

    results = {
        case: (
            Comparison(label(case), "bare Bolt ack-only", "ms", "≤ 1.5"),
            Comparison(label(case) + ": ack + respond() control", "bare Bolt ack-only", "ms", "-"),
            Comparison(label(case) + ": ack + respond() on a shared session", "bare Bolt ack-only", "ms", "-"),
        )
        for case in cases
    }
    async with servers(database_url, tmp, warm_up=min(10, per_user)) as (standin, urls, _):
        for _ in range(repetitions):
            for case in cases:
                command, text, users = case
                measured = {
                    name: await ack_p99(url, standin, command, text, users, per_user) for name, url in urls.items()
                }
                ours, control, shared = results[case]
                ours.pairs.append((measured["bare"], measured["guardrail"]))
                control.pairs.append((measured["bare"], measured["respond"]))
                shared.pairs.append((measured["bare"], measured["shared"]))
    return [c for case in cases for c in results[case]]
