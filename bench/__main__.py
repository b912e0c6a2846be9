"""`python -m bench [--quick] [--output bench/RESULTS.md]`: every benchmark beside its baseline.

Each repetition measures the baseline and guardrail back to back (interleaved), so the ratio is
taken under the same machine load; the report gives median [min-max] over the repetitions.

  acks      slash-command ack p99, 1 and 10 users, SQLite and PostgreSQL (bench.acks)
            vs a bare Bolt AsyncApp that only acks; beside it two controls: ack + Bolt's respond(),
            and ack + one response_url post over a shared HTTP session
  gate      GET /api/v1/freeze req/s with 1,000 windows in force vs a bare Starlette JSON endpoint
  health    "are we down?" answer time vs the slowest target's latency (bench.health)
  rq        rq_replay with no cap vs RQ's own FailedJobRegistry.requeue loop; the busiest sliding
            second at per_second: 200
  startup   `import bot.cli` and `guardrail check-config` vs `import slack_bolt`; `guardrail serve` from
            spawn to /healthz 200 and its idle RSS vs a bare Bolt app with /healthz (bench.startup)
  lateness  reminders, starts and ends under the real scheduler with 10,000 windows in the table, on
            SQLite and PostgreSQL: p99 from due time to the outbox's courier vs the 2 s goal
  load      50 requests/s of mixed traffic for 60 s (bench.load): p99, errors, RSS drift
  watch     concurrent change watches (bench.watch): probes per target per round vs 1, alarm latency
            vs watch_threshold x watch_every, a watch round vs a plain health round

`--only acks,gate` runs just those parts (printed; a report only with `--output`).
`--quick` runs every part once with tiny sizes on SQLite only (the test suite's smoke test) and
writes no report unless `--output` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dotenv import dotenv_values

from bench import acks, gate, health, load, startup, watch
from bench.report import Comparison, machine, markdown
from tests.support.ports import free_port

ROOT = Path(__file__).parent.parent
REPETITIONS = 5  # p99 ratios on a shared machine need more than 3 to settle
ACKS_PER_USER = 100  # commands each user sends one after another: 1,000 acks at 10 users, p99 = 10th slowest


@contextmanager
def databases(tmp: Path, quick: bool) -> Iterator[list[tuple[str, str]]]:
    from tests.support.databases import postgres_schema_url

    sqlite = ("SQLite", f"sqlite:///{tmp / 'bench.db'}")
    if quick:
        yield [sqlite]
        return
    with postgres_schema_url() as url:
        yield [sqlite, ("PostgreSQL", url)]


async def seed_windows(url: str, count: int) -> None:
    """`count` windows in force on production now (the gate reads them all), nothing left to announce."""
    from sqlalchemy import delete, insert

    from bot.db.engine import Database
    from bot.db.freeze import FreezeWindowRecord

    now = datetime.now(UTC)
    rows = [
        {
            "environment": "production",
            "reason": f"Bench {i}",
            "starts_at": now - timedelta(minutes=1),
            "ends_at": now + timedelta(hours=6 + i / 100),
            "created_by": "bench",
            "created_at": now,
        }
        for i in range(count)
    ]
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(delete(FreezeWindowRecord))
        if rows:
            await conn.execute(insert(FreezeWindowRecord), rows)
    await db.dispose()


async def bench_gate(url: str, tmp: Path, *, windows: int, requests: int, repetitions: int) -> Comparison:
    config = tmp / "gate-config"
    config.mkdir(exist_ok=True)
    (config / "guardrail.yaml").write_text(gate.CONFIG)
    await seed_windows(url, windows)
    env = {"BENCH_DATABASE_URL": url, "BENCH_CONFIG": str(config)}
    ports = free_port(), free_port()
    procs = [
        gate._serve("bench.gate_apps:bare_app", ports[0], env),
        gate._serve("bench.gate_apps:gate_app", ports[1], env),
    ]
    result = Comparison(
        f"gate req/s, {windows:,} windows in force (shown as time per 1,000 requests)",
        "bare Starlette JSON",
        "s",
        "≤ 2 (req/s ≥ half)",
    )
    try:
        bare = f"http://127.0.0.1:{ports[0]}/api/v1/freeze?environment=production"
        ours = f"http://127.0.0.1:{ports[1]}/api/v1/freeze?environment=production&service=api"
        await gate._wait_up(bare)
        await gate._wait_up(ours)
        auth = {"Authorization": "Bearer bench-token"}
        for _ in range(repetitions):
            b = await gate._load(bare, requests, 20, {})
            g = await gate._load(ours, requests, 20, auth)
            result.pairs.append((1000 / b["rps"], 1000 / g["rps"]))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    return result


async def reset_freezes(url: str) -> None:
    """No windows, claims or outbox rows left from an earlier part."""
    from sqlalchemy import delete

    from bot.db.engine import Database
    from bot.db.freeze import FreezeAnnouncementRecord, FreezeWindowRecord
    from bot.db.outbox import OutboxRecord

    db = Database(url)
    async with db.engine.begin() as conn:
        for table in (OutboxRecord, FreezeAnnouncementRecord, FreezeWindowRecord):
            await conn.execute(delete(table))
    await db.dispose()


async def bench_lateness(
    url: str, backend: str, tmp: Path, *, windows: int, due: int, spread: float, repetitions: int
) -> Comparison:
    config = tmp / "lateness-config"
    config.mkdir(exist_ok=True)
    quick = windows < 1000  # the smoke run: a 1 s reminder, so the first falls due 3 s in, not 15
    (config / "guardrail.yaml").write_text(gate.CONFIG.replace("[10s]", "[1s]") if quick else gate.CONFIG)
    notices = due * 3
    result = Comparison(
        f"reminder/start/end lateness p99, {windows:,} windows in the table, {notices:,} notices "
        f"over ~{spread + 5:.0f} s, {backend}",
        "the goal",
        "s",
        "< 2 s (ratio < 1)",
    )
    for _ in range(repetitions):
        await reset_freezes(url)
        run = await gate.bench_windows(
            url, config, windows, due, spread=spread, length=1.0 if quick else 5.0, lead=3.0 if quick else 15.0
        )
        missing = run.expected - len(run.lateness)
        if missing:  # never announced in time (a reminder a late tick folds into "started"): infinitely late
            print(f"lateness run, {backend}: {missing} of {run.expected} notices missing ({run.kinds})")
            run.lateness += [float("inf")] * missing
        result.pairs.append((2.0, run.p99))
    await reset_freezes(url)
    return result


async def bench_health(*, targets: int, runs: int) -> Comparison:
    run = await health.measure(targets, 2, runs)
    result = Comparison(f'"are we down?" answer, {targets} targets', "slowest target's latency", "s", "≤ 1.2")
    result.pairs = list(zip(run.slowest, run.answers, strict=True))
    return result


async def bench_watch(*, services: int, rounds: int) -> list[Comparison]:
    run = await watch.measure(services, rounds)
    probes = Comparison(
        f"change watch, {run.watches} concurrent watches: probes per target per round", "one probe", "probes", "= 1"
    )
    probes.pairs = [(1.0, float(count)) for count in run.probes_per_target_round]
    latency = Comparison(
        f"change watch alarm latency (injected clock), {len(run.alarm_latency)} broken services",
        "watch_threshold x watch_every",
        "s",
        "≤ +1 round",
    )
    latency.pairs = [(run.expected_latency, seconds) for seconds in run.alarm_latency]
    rounds_time = Comparison(
        f"change watch round, {run.watches} watches (wall time)", "plain health round of the same services", "s", "—"
    )
    rounds_time.pairs = list(zip(run.health_round_seconds, run.round_seconds, strict=True))
    return [probes, latency, rounds_time]


def _rq_requeue_all(url: str) -> None:
    import redis
    from rq import Queue
    from rq.registry import FailedJobRegistry

    conn = redis.Redis.from_url(url)
    registry = FailedJobRegistry(queue=Queue("default", connection=conn))
    for job_id in registry.get_job_ids():
        registry.requeue(job_id)
    conn.close()


async def bench_rq(*, jobs: int, repetitions: int) -> list[Comparison]:
    from bench.actions import _busiest_second, _failed_jobs
    from bot.actions.rq_replay import RqReplayStep
    from bot.config import RqReplayAction
    from tests.support.actions import make_ctx
    from tests.support.redis import redis_test_url

    logging.getLogger("rq.worker").disabled = True  # the failing jobs' tracebacks are expected
    speed = Comparison(f"rq_replay {jobs:,} failed jobs, no cap, batch 200", "RQ's own requeue loop", "s", "—")
    capped = Comparison(
        f"rq_replay {jobs:,} jobs at per_second: 200, most in any sliding second", "the cap", "jobs", "≤ 1.0"
    )
    with redis_test_url() as url:
        for _ in range(repetitions):
            await asyncio.to_thread(_failed_jobs, url, jobs)
            started = time.perf_counter()
            await asyncio.to_thread(_rq_requeue_all, url)
            baseline = time.perf_counter() - started
            await asyncio.to_thread(_failed_jobs, url, jobs)
            started = time.perf_counter()
            await RqReplayStep(RqReplayAction(redis_url=url, per_second=1_000_000, batch_size=200)).run(make_ctx())
            speed.pairs.append((baseline, time.perf_counter() - started))
            await asyncio.to_thread(_failed_jobs, url, jobs)
            await RqReplayStep(RqReplayAction(redis_url=url, per_second=200, batch_size=50)).run(make_ctx())
            capped.pairs.append((200, await asyncio.to_thread(_busiest_second, url)))
    return [speed, capped]


def _seconds(*args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_URL"))}
    env.update({k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()})  # as check-config's test
    # check-config also checks the settings `serve` needs: give it well-formed ones (never used)
    env.update(
        {
            "SLACK_BOT_TOKEN": "xoxb-0-bench",
            "SLACK_SIGNING_SECRET": "bench-secret",
            "SLACK_APP_TOKEN": "",
            "DATABASE_URL": "sqlite:///" + str(Path(tempfile.gettempdir()) / "guardrail-bench.db"),
        }
    )
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, cwd=ROOT, env=env, timeout=120)
    return time.perf_counter() - started


def bench_startup(*, repetitions: int) -> list[Comparison]:
    cli = Comparison("`python -c 'import bot.cli'`", "`import slack_bolt`", "s", "< 0.6 s")
    check = Comparison("`guardrail check-config` (whole process)", "`import slack_bolt`", "s", "< 0.6 s")
    for _ in range(repetitions):
        bolt = _seconds("-c", "import slack_bolt")
        cli.pairs.append((bolt, _seconds("-c", "import bot.cli")))
        check.pairs.append((bolt, _seconds("-m", "bot", "check-config")))
    return [cli, check]


def progress(part: str) -> None:
    """What runs now, on stderr: a whole run takes a quarter of an hour and prints its report at the end."""
    print(f"bench: {datetime.now(UTC):%H:%M:%S} {part}", file=sys.stderr, flush=True)


PARTS = ("startup", "lateness", "acks", "gate", "rq", "watch", "health", "load")


async def run(quick: bool, parts: frozenset[str] = frozenset(PARTS)) -> tuple[list[Comparison], int, list[str]]:
    from bot.db import migrate

    reps = 1 if quick else REPETITIONS
    results: list[Comparison] = []
    if "startup" in parts:
        progress("startup: imports and check-config")
        results += bench_startup(repetitions=reps)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with databases(tmp, quick) as urls:
            for backend, url in urls:
                await asyncio.to_thread(migrate.upgrade, url)
                if backend == "SQLite" and "startup" in parts:
                    progress("startup: serve to /healthz, idle RSS")
                    config = tmp / "serve-config"
                    config.mkdir(exist_ok=True)
                    (config / "guardrail.yaml").write_text(gate.CONFIG)
                    results += await startup.bench_serve(url, config, repetitions=reps, idle=1.0 if quick else 5.0)
                if "lateness" in parts:
                    progress(f"lateness, {backend} (about a minute a repetition)")
                    results.append(
                        await bench_lateness(
                            url,
                            backend,
                            tmp,
                            windows=200 if quick else 10_000,
                            due=20 if quick else 1000,
                            spread=5 if quick else 30,
                            repetitions=reps,
                        )
                    )
                if "acks" in parts:
                    progress(f"acks, {backend}")
                    await seed_windows(url, 5)
                    results += await acks.bench_acks(
                        url, backend, tmp, repetitions=reps, per_user=2 if quick else ACKS_PER_USER
                    )
            if "gate" in parts:
                progress("gate")
                results.append(
                    await bench_gate(urls[0][1], tmp, windows=1000, requests=50 if quick else 3000, repetitions=reps)
                )
    if "rq" in parts:
        progress("rq")
        results += await bench_rq(jobs=50 if quick else 1000, repetitions=reps)
    notes = []
    if "watch" in parts:
        progress("watch")
        results += await bench_watch(services=5 if quick else 50, rounds=2 if quick else 4)
    if not quick and "health" in parts:
        progress("health")
        results.append(await bench_health(targets=50, runs=3))
    if not quick and "load" in parts:
        progress("load (60 s)")
        with tempfile.TemporaryDirectory() as name:
            url = f"sqlite:///{name}/load.db"
            await asyncio.to_thread(migrate.upgrade, url)
            sustained = await load.sustained(url, Path(name), rate=50, seconds=60)
        notes.append(
            f'Sustained mixed load (`python -m bench.load`; /freeze list, /health, "are we down?", '
            f"button clicks, gate calls; SQLite): {sustained.summary(50, 60)}."
        )
    return results, reps, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one tiny repetition of everything (smoke test)")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run ({', '.join(PARTS)}); a partial run writes no report unless --output",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the report (default bench/RESULTS.md; --quick: only printed)",
    )
    args = parser.parse_args()
    parts = frozenset(p.strip() for p in args.only.split(",") if p.strip())
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; the parts are {', '.join(PARTS)}")
    before = machine()
    results, reps, notes = asyncio.run(run(args.quick, parts))
    command = "python -m bench" + (" --quick" if args.quick else "")
    notes += [
        "Controls: a bare Bolt app that acks and then calls Bolt's respond() once (a new HTTP session "
        "and connection per call), and one that posts to the response_url over one shared session instead. "
        "Between them they show what answering costs the event loop, apart from guardrail's own work."
    ]
    report = markdown(results, repetitions=reps, command=command, notes=notes, load_before=before, load_after=machine())
    partial = parts != set(PARTS)
    output = args.output or (None if args.quick or partial else ROOT / "bench" / "RESULTS.md")
    if output is not None:
        output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
