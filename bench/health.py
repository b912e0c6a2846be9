""" "Are we down?" benchmark: answer time against the slowest target, and traffic per target.

Fifty local HTTP targets (each its own server): one answers in 1.0 s, the rest in 10-100 ms.
The real bot (over HTTP, SQLite) answers through the Slack stand-in.

1. One question, `--runs` times (each a fresh round): time from sending the message event to
   the stand-in receiving the thread reply, against the slowest check latency measured in the
   same round. Target: at most 1.2x.
2. Fifty concurrent questions (a fresh round): requests each target received. Target: at most 2.

Run from the repository root:  python bench/health.py [--targets 50] [--questions 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sandbox.fakes.targets import TargetServer, target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.server import serve_asgi
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock

SLOWEST = 1.0


async def ask(bot: BotHarness, user: str) -> float:
    """Seconds from sending "are we down?" to the stand-in receiving the thread reply."""
    ts = bot.fake.next_ts()
    sent = time.time()
    await bot.slack.message("are we down?", ts=ts, user=user)
    reply = await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts, timeout=30)
    return reply.at - sent


def slowest_latency(bot: BotHarness) -> float:
    last = bot.runtime.health.last_round
    assert last is not None
    return max(r.latency_ms or 0.0 for r in last.results) / 1000


@dataclass
class HealthRun:
    answers: list[float]  # seconds to the reply, one per fresh round
    slowest: list[float]  # the slowest target's measured latency in the same round
    per_target: list[int]  # requests each target got from the concurrent questions
    concurrent_seconds: float
    concurrent_times: list[float]


async def measure(targets: int, questions: int, runs: int) -> HealthRun:
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(4)
    async with AsyncExitStack() as stack:
        servers: list[TargetServer] = [await stack.enter_async_context(target_server()) for _ in range(targets)]
        lines = ["services:"]
        for i, server in enumerate(servers):
            delay = SLOWEST if i == 0 else rng.uniform(0.010, 0.100)
            lines += [f"  - name: t{i:02d}", f'    http: {{url: "{server.set("/health", delay=delay)}"}}']
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config = write_config(tmp / "config", "\n".join(lines) + "\n")
        fake = FakeSlack()
        fake.url = await stack.enter_async_context(serve_asgi(fake.app))
        clock = FakeClock()
        bot = await stack.enter_async_context(
            running_bot(database_url=f"sqlite:///{tmp / 'bench.db'}", config_dir=config, fake=fake, clock=clock)
        )
        await ask(bot, "U0WARMUP")  # connections, Bolt's auth.test, imports

        answers, slowest = [], []
        for _ in range(runs):
            clock.advance(timedelta(seconds=11))  # past cache_ttl: a fresh round
            answers.append(await ask(bot, "U0ALICE"))
            slowest.append(slowest_latency(bot))

        clock.advance(timedelta(seconds=11))
        for server in servers:
            server.hits.clear()
        started = time.time()
        times = await asyncio.gather(*(ask(bot, f"U0P{i:03d}") for i in range(questions)))
        return HealthRun(
            answers, slowest, [server.hits["/health"] for server in servers], time.time() - started, list(times)
        )


async def main(targets: int, questions: int, runs: int) -> int:
    run = await measure(targets, questions, runs)
    ratios = [a / s for a, s in zip(run.answers, run.slowest, strict=True)]
    print(f"targets: {targets} (one answering in {SLOWEST:.1f} s, the rest in 10-100 ms)")
    print(f"single question, {runs} fresh rounds:")
    for answer, slow, ratio in zip(run.answers, run.slowest, ratios, strict=True):
        print(f"  answer {answer * 1000:7.1f} ms   slowest target {slow * 1000:7.1f} ms   ratio {ratio:.3f}")
    print(f"  median ratio {statistics.median(ratios):.3f}, worst {max(ratios):.3f} (target <= 1.2)")
    print(f"{questions} concurrent questions (fresh round):")
    print(
        f"  all answered within {run.concurrent_seconds * 1000:.1f} ms (per question: median "
        f"{statistics.median(run.concurrent_times) * 1000:.1f} ms, max {max(run.concurrent_times) * 1000:.1f} ms)"
    )
    print(
        f"  requests per target: max {max(run.per_target)}, min {min(run.per_target)}, "
        f"total {sum(run.per_target)} for {targets} targets (target <= 2 each)"
    )
    ok = max(ratios) <= 1.2 and max(run.per_target) <= 2
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.targets, args.questions, args.runs)))
