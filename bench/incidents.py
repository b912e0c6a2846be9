"""Benchmark: how fast a playbook click turns into a result, and exactly-once under contention.

    python -m bench.incidents [--db sqlite|postgres] [--clicks 50] [--racers 10]

1. latency: `--clicks` sequential clicks on a step (a fake action that returns at once), each
   timed from the signed HTTP POST to the result in the thread and the playbook message updated
   — the bot's own overhead: claim + audit in one transaction, chat.update, execute, record.
2. contention: `--racers` copies of the *same* click sent at once, split over two bot instances
   (each with its own HTTP server and connection pool) sharing the database; counts executions
   (must be 1) and the time until every copy is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.server import serve_asgi
from tests.support.bot import running_bot
from tests.support.clock import FakeClock
from tests.support.databases import database_url_for
from tests.support.fake_actions import FakeActions
from tests.support.incidents import FakeFreezes, add_sre_group, declare, fakes, incident_config, text_of, value_of

RUN = "incident.step.run:verify"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(db: str, clicks: int, racers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with database_url_for(db, tmp_path) as url:
            fake = FakeSlack()
            async with serve_asgi(fake.app) as slack_url:
                fake.url = slack_url
                config = incident_config(tmp_path)
                clock = FakeClock()
                actions = FakeActions()
                async with (
                    running_bot(
                        database_url=url,
                        config_dir=config,
                        fake=fake,
                        clock=clock,
                        overrides=fakes(actions, FakeFreezes()),
                    ) as one,
                    running_bot(
                        database_url=url,
                        config_dir=config,
                        fake=fake,
                        clock=clock,
                        overrides=fakes(actions, FakeFreezes()),
                    ) as two,
                ):
                    add_sre_group(fake)
                    channel = await declare(one)
                    latencies: list[float] = []
                    for _ in range(clicks):
                        mark = fake.mark()
                        started = time.perf_counter()
                        await one.slack.block_action(RUN, user_id="U0CAROL", channel_id=channel)
                        await fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
                        latencies.append((time.perf_counter() - started) * 1000)
                    print(
                        f"[{db}] click → result in thread: n={clicks} median {statistics.median(latencies):.1f} ms, "
                        f"p95 {_pct(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms"
                    )

                    before = actions.runs["verify"]
                    value = value_of(one, channel, RUN)
                    answered = len(fake.responses)
                    started = time.perf_counter()
                    await asyncio.gather(
                        *(
                            (one if i % 2 == 0 else two).slack.block_action(
                                RUN, value, user_id="U0CAROL", channel_id=channel
                            )
                            for i in range(racers)
                        )
                    )
                    await fake.wait_for_response(lambda r: len(fake.responses) - answered >= racers - 1, timeout=60)
                    await fake.wait_for(
                        "chat.postMessage",
                        lambda c: "* succeeded after" in text_of(c) and f"(run {clicks + 1})" in text_of(c),
                        timeout=60,
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    executed = actions.runs["verify"] - before
                    print(
                        f"[{db}] {racers} copies of one click over 2 bot instances: executed {executed}x, "
                        f"{racers - 1} refused, all answered in {elapsed:.0f} ms"
                    )
                    assert executed == 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--racers", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args.db, args.clicks, args.racers))


if __name__ == "__main__":
    main()
