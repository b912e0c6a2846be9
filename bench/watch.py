"""Change-watch benchmark: many concurrent watches share their probes and raise the alarm on time.

The real bot (over HTTP, SQLite, the Slack stand-in, an injected clock) watches `--services`
services, each deployed once through `POST /api/v1/deploys` (so as many watches run at once), plus
`--services` more deploys of one shared service (fifty watches on one target). Every target is a
path on a local HTTP server that counts its requests. Rounds are driven by the scheduler's own tick
(`ChangeService.watch_tick`), the clock moved `watch_every` between them.

1. Probes per target per round (counted where the watch sends them; a loaded target server may see a
   late request in the next round), over the rounds before anything breaks. Target: exactly 1.
2. A third of the services break between two rounds; the alarm latency of each (on the injected
   clock, from the break to the round that raised it) against `watch_threshold x watch_every`.
   Target: within one round of it.
3. Wall time of one watch round with every watch running, against one plain health round of the
   same services (what the probes alone cost).

Run from the repository root:  python bench/watch.py [--services 50] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.server import serve_asgi
from tests.support.bot import API_TOKEN, BotHarness, running_bot, write_config
from tests.support.clock import FakeClock

WATCH_EVERY = timedelta(seconds=15)
THRESHOLD = 2
SHARED = "shared"


@dataclass
class WatchRun:
    watches: int
    probes_per_target_round: list[int]  # every (target, round) pair before the break
    alarm_latency: list[float]  # injected-clock seconds from break to alarm, per broken service
    expected_latency: float  # watch_threshold x watch_every
    round_seconds: list[float]  # wall time of a watch round with every watch running
    health_round_seconds: list[float]  # wall time of one plain health round of the same services


async def _deploy(http: httpx.AsyncClient, service: str, version: str) -> None:
    answer = await http.post(
        "/api/v1/deploys",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        json={"environment": "production", "service": service, "version": version, "actor": "bench"},
    )
    assert answer.status_code == 201, answer.text


async def _round(bot: BotHarness) -> float:
    """One round; its wall time."""
    bot.clock.advance(WATCH_EVERY)
    started = time.perf_counter()
    await bot.runtime.changes.watch_tick()
    return time.perf_counter() - started


async def measure(services: int, rounds: int) -> WatchRun:
    logging.basicConfig(level=logging.WARNING)
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(target_server())
        names = [f"s{i:02d}" for i in range(services)]
        lines = ["services:"]
        for name in [*names, SHARED]:
            lines += [f"  - name: {name}", f'    http: {{url: "{server.set("/" + name)}"}}', "    timeout: 5s"]
        lines += [
            "changes:",
            "  watch_for: 15m",
            f"  watch_every: {int(WATCH_EVERY.total_seconds())}s",
            f"  watch_threshold: {THRESHOLD}",
        ]
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config = write_config(tmp / "config", "\n".join(lines) + "\n")
        fake = FakeSlack()
        fake.url = await stack.enter_async_context(serve_asgi(fake.app))
        bot = await stack.enter_async_context(
            running_bot(
                database_url=f"sqlite:///{tmp / 'bench.db'}",
                config_dir=config,
                fake=fake,
                clock=FakeClock(),
                gate_timeout=30.0,
            )
        )
        async with httpx.AsyncClient(base_url=bot.url) as http:
            for name in names:
                await _deploy(http, name, "v2")
            for n in range(services):
                await _deploy(http, SHARED, f"v{n + 2}")
        await bot.runtime.changes.settle()
        await bot.runtime.outbox.settle()
        watches = 2 * services

        per_target: list[int] = []
        round_seconds: list[float] = []
        probes = bot.runtime.changes.watch.probes  # the probes the watch sent, per service
        for _ in range(rounds):
            before = dict(probes)
            seconds = await _round(bot)
            round_seconds.append(seconds)
            per_target += [probes[name] - before.get(name, 0) for name in [*names, SHARED]]

        health_seconds = []
        for _ in range(rounds):
            started = time.perf_counter()
            await bot.runtime.health.probe([*names, SHARED])
            health_seconds.append(time.perf_counter() - started)

        broken = names[::3]
        bot.clock.advance(WATCH_EVERY / 3)  # the break falls between two rounds
        broke_at = bot.clock.now()
        for name in broken:
            server.set("/" + name, status=500)
        changes = {cid: c for cid in range(1, watches + 1) if (c := await bot.runtime.changes.get(cid)) is not None}
        wanted = {cid for cid, c in changes.items() if c.service in broken}
        latency: dict[int, float] = {}
        for _ in range(THRESHOLD + 3):
            await _round(bot)
            for cid in wanted - set(latency):
                # when the alarm was raised (by whichever tick ran the round: the scheduler's may too)
                change = await bot.runtime.changes.get(cid)
                if change is not None and change.alerted_at is not None:
                    latency[cid] = (change.alerted_at - broke_at).total_seconds()
            if wanted <= set(latency):
                break
        missing = wanted - set(latency)
        assert not missing, f"no alarm for {sorted(changes[c].service for c in missing)}"
        return WatchRun(
            watches,
            per_target,
            [latency[c] for c in sorted(wanted)],
            (THRESHOLD * WATCH_EVERY).total_seconds(),
            round_seconds,
            health_seconds,
        )


async def main(services: int, rounds: int) -> int:
    run = await measure(services, rounds)
    print(
        f"{run.watches} concurrent watches: {services} services deployed once each, and {services} deploys "
        f"of one shared service"
    )
    print(
        f"probes per target per round: max {max(run.probes_per_target_round)}, min "
        f"{min(run.probes_per_target_round)} over {rounds} rounds (target: 1)"
    )
    print(
        f"alarm latency (injected clock): median {statistics.median(run.alarm_latency):.1f} s, max "
        f"{max(run.alarm_latency):.1f} s for {len(run.alarm_latency)} broken services; threshold x every = "
        f"{run.expected_latency:.0f} s (target: within one round, <= {run.expected_latency + 15:.0f} s)"
    )
    print(
        f"watch round wall time: median {statistics.median(run.round_seconds) * 1000:.1f} ms "
        f"(plain health round of the same services: {statistics.median(run.health_round_seconds) * 1000:.1f} ms)"
    )
    ok = max(run.probes_per_target_round) == 1 and max(run.alarm_latency) <= run.expected_latency + 15
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.services, args.rounds)))
