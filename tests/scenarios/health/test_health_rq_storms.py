""" "Are we down?" names a crash-looping worker: real Redis, RQ's worker registry, the Slack stand-in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import redis
from rq import Queue, Worker

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot, write_config
from tests.support.clock import FakeClock


async def test_are_we_down_shows_a_crash_looping_worker(
    database_url: str, redis_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    clock.set(datetime.now(UTC))  # RQ stamps births with the real time
    conn = redis.Redis.from_url(redis_url)
    queue = Queue("payments", connection=conn)
    for i in range(14):  # fourteen restarts of the two workers that should run
        Worker([queue], connection=conn, name=f"payments-worker-{i}").register_birth()
    conn.close()
    config = write_config(
        tmp_path / "config",
        f"""
        services:
          - name: jobs
            rq: {{redis_url: "{redis_url}", queue: payments, workers: 2}}
    """,
    )
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
        ts = bot.fake.next_ts()
        await bot.slack.message("Are we down?", ts=ts)
        reply = await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts)
    assert reply.args["text"] == "jobs is down"
    text = blocks_text(reply.args["blocks"])
    assert "worker crash-looping: 14 workers started in 5 min, 0 jobs finished" in text, text
