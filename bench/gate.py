"""Benchmark the freeze gate and the scheduler.

1. Gate throughput: `GET /api/v1/freeze` on the real bot with `--gate-windows` windows in force vs
   a bare Starlette endpoint returning a constant, both under uvicorn on 127.0.0.1 (separate
   processes, one worker each), same run, concurrency 20, a fixed number of requests each,
   interleaved and repeated. Reports requests/s, p50/p99 latency and the ratio per repetition.
2. Ten thousand scheduled windows: the bot's real APScheduler tick (every 1 s) over a database
   holding N windows, of which `--due` fall due during the run; reports how late each reminder,
   start and end announcement reached Slack's doorstep (the outbox's courier, which records
   instead of posting), and the process RSS.

    python -m bench.gate [--requests 5000] [--gate-windows 1000] [--repetitions 3] [--windows 10000]
                         [--due 1000] [--database-url URL] [--skip-gate] [--skip-windows]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).parent.parent
CONFIG = """\
timezone: Europe/Berlin
channels: {deploys: C0DEPLOYS}
freeze:
  environments: [production, staging]
  reminders: [10s]
  max_duration: 7d
"""


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. gate throughput ------------------------------------------------------------------------


def _serve(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
    )


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def _load(url: str, requests: int, concurrency: int, headers: dict[str, str]) -> dict[str, Any]:
    # aiohttp as the load generator: httpx's client is slower than the bare server and would be
    # what gets measured.
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(50):  # warm-up
            async with client.get(url, headers=headers) as response:
                await response.read()

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with client.get(url, headers=headers) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "statuses": statuses,
    }


async def _windows_in_force(database_url: str, config: Path, count: int) -> None:
    """`count` windows in force on production (bulk-inserted: the gate reads them, nothing announces them)."""
    from sqlalchemy import insert

    from bot.db.engine import Database
    from bot.db.freeze import FreezeWindowRecord

    now = datetime.now(UTC)
    rows = [
        {
            "environment": "production",
            "reason": f"Benchmark freeze {i}",
            "starts_at": now - timedelta(minutes=1),
            "ends_at": now + timedelta(hours=2, seconds=i),
            "created_by": "bench",
            "created_at": now,
            "next_event_at": None,
        }
        for i in range(count)
    ]
    db = Database(database_url)
    async with db.engine.begin() as conn:
        for chunk in range(0, len(rows), 1000):
            await conn.execute(insert(FreezeWindowRecord), rows[chunk : chunk + 1000])
    await db.dispose()


async def bench_gate(
    database_url: str, config: Path, requests: int, concurrency: int, windows: int, repetitions: int
) -> None:
    """Bare Starlette and the gate, interleaved (bare, gate, bare, gate …), `repetitions` times;
    the ratio is taken within each repetition because the shared machine's speed swings."""
    await _windows_in_force(database_url, config, windows)
    env = {"BENCH_DATABASE_URL": database_url, "BENCH_CONFIG": str(config)}
    bare_port, gate_port = free_port(), free_port()
    servers = [_serve("bench.gate_apps:bare_app", bare_port, env), _serve("bench.gate_apps:gate_app", gate_port, env)]
    rounds: list[tuple[dict[str, float], dict[str, float]]] = []
    try:
        bare_url = f"http://127.0.0.1:{bare_port}/api/v1/freeze?environment=production"
        gate_url = f"http://127.0.0.1:{gate_port}/api/v1/freeze?environment=production&service=api"
        await _wait_up(bare_url)
        await _wait_up(gate_url)
        for _ in range(repetitions):
            bare = await _load(bare_url, requests, concurrency, {})
            gate = await _load(gate_url, requests, concurrency, {"Authorization": "Bearer bench-token"})
            rounds.append((bare, gate))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    print(
        f"gate benchmark: {windows} windows in force, {requests} requests per run, concurrency {concurrency}, "
        f"{repetitions} interleaved repetitions ({os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    for i, (bare, gate) in enumerate(rounds, 1):
        for name, result in (("bare Starlette constant", bare), ("guardrail GET /api/v1/freeze", gate)):
            print(
                f"  #{i} {name:30s} {result['rps']:8.0f} req/s   p50 {result['p50_ms']:6.1f} ms   "
                f"p99 {result['p99_ms']:6.1f} ms   statuses {result['statuses']}"
            )
    ratios = [gate["rps"] / bare["rps"] for bare, gate in rounds]
    print(
        f"  gate / bare throughput: median {statistics.median(ratios):.2f} "
        f"[{min(ratios):.2f}-{max(ratios):.2f}] (goal ≥ 0.5)"
    )


# --- 2. ten thousand windows -----------------------------------------------------------------


class LatenessRecorder:
    """An outbox courier that only records how late each scheduled notice was handed over."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self.kinds: dict[str, int] = {}

    async def deliver(self, message: Any) -> Any:
        from bot.services.freeze.notices import from_payload
        from bot.services.outbox import Delivered

        notice = from_payload(message.payload)
        if notice.due_at is not None:
            self.lateness.append((datetime.now(UTC) - notice.due_at).total_seconds())
            self.kinds[notice.kind.value] = self.kinds.get(notice.kind.value, 0) + 1
        return Delivered("bench", str(message.id))


@dataclass
class Lateness:
    expected: int
    lateness: list[float]  # seconds from each notice's due time to its hand-over to the courier
    kinds: dict[str, int]
    rss_before: float
    rss_peak: float

    @property
    def p99(self) -> float:
        return _percentile(self.lateness, 0.99) if self.lateness else float("inf")


async def bench_windows(
    database_url: str,
    config: Path,
    windows: int,
    due: int,
    *,
    spread: float = 60.0,
    length: float = 20.0,
    lead: float = 15.0,
) -> Lateness:
    """`windows` in the table, `due` of them starting within `spread` seconds (each `length` long), under the
    real scheduler; every reminder, start and end is timed from its due time to the courier."""
    from sqlalchemy import insert

    from bot.config import load_config
    from bot.db.freeze import FreezeWindowRecord
    from bot.runtime import Overrides, build_runtime
    from bot.scheduler import build_scheduler
    from bot.services.freeze.models import FreezeWindow
    from bot.services.freeze.schedule import first_event_at
    from bot.settings import Settings

    settings = Settings(_env_file=None, database_url=database_url, guardrail_config=config)
    recorder = LatenessRecorder()
    runtime = build_runtime(settings, load_config(config), slack=False, overrides=Overrides(courier=recorder))
    reminders = list(runtime.config.freeze.reminders)

    def row(i: int, now: datetime) -> dict[str, object]:
        if i < due:  # these fall due during the run: reminders 10 s before starts spread over `spread` s
            start = now + timedelta(seconds=lead + spread * i / due)
            span = timedelta(seconds=length)
        else:  # the rest wait in the table, spread over the next week
            start = now + timedelta(hours=1) + timedelta(seconds=(7 * 86400) * i / windows)
            span = timedelta(hours=2)
        window = FreezeWindow(
            id=i + 1,
            environment="production" if i % 2 else "staging",
            reason=f"Bench {i}",
            starts_at=start,
            ends_at=start + span,
            created_by="bench",
            created_at=now,
        )
        return {
            "environment": window.environment,
            "reason": window.reason,
            "starts_at": start,
            "ends_at": window.ends_at,
            "created_by": "bench",
            "created_at": now,
            "next_event_at": first_event_at(window, reminders),
        }

    # The waiting windows first: then the due ones are timed from when the (slow) bulk insert is over.
    waiting = [row(i, datetime.now(UTC)) for i in range(due, windows)]
    async with runtime.db.engine.begin() as conn:
        for chunk in range(0, len(waiting), 1000):
            await conn.execute(insert(FreezeWindowRecord), waiting[chunk : chunk + 1000])
    now = datetime.now(UTC)
    async with runtime.db.engine.begin() as conn:
        await conn.execute(insert(FreezeWindowRecord), [row(i, now) for i in range(due)])
    rss_before = _rss_mb()
    scheduler = build_scheduler(runtime)
    scheduler.start()
    expected = due * (1 + len(reminders) + 1)
    deadline = time.monotonic() + 180
    peak = rss_before
    while len(recorder.lateness) < expected and time.monotonic() < deadline:
        await asyncio.sleep(1)
        peak = max(peak, _rss_mb())
    scheduler.shutdown(wait=False)
    await runtime.close()
    return Lateness(expected, recorder.lateness, recorder.kinds, rss_before, peak)


def print_lateness(result: Lateness, windows: int, due: int) -> None:
    late = result.lateness
    print(
        f"scheduler benchmark: {windows} windows in the table, {due} falling due during the run "
        f"({result.expected} announcements expected, {len(late)} made: {result.kinds})"
    )
    if late:
        print(f"  lateness: p50 {statistics.median(late):.2f} s   p99 {result.p99:.2f} s   max {max(late):.2f} s")
    print(f"  RSS: {result.rss_before:.0f} MB after loading, peak {result.rss_peak:.0f} MB while announcing")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--gate-windows", type=int, default=1000, help="windows in force for the gate part")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file per part")
    parser.add_argument("--skip-gate", action="store_true")
    parser.add_argument("--skip-windows", action="store_true")
    args = parser.parse_args()

    from bot.db import migrate

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.mkdir()
        (config / "guardrail.yaml").write_text(CONFIG)
        for part, run in (("gate", not args.skip_gate), ("windows", not args.skip_windows)):
            if not run:
                continue
            url = args.database_url or f"sqlite:///{tmp}/{part}.db"
            migrate.upgrade(url)
            if part == "gate":
                await bench_gate(url, config, args.requests, args.concurrency, args.gate_windows, args.repetitions)
            else:
                print_lateness(await bench_windows(url, config, args.windows, args.due), args.windows, args.due)


if __name__ == "__main__":
    asyncio.run(main())
