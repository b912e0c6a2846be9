"""Sustained mixed load: slash commands, "are we down?" questions, button clicks and gate calls at a
fixed rate (open loop: a request is sent on schedule whether or not earlier ones were answered)
against guardrail in its own process. Goals: ack p99 < 300 ms, zero errors, RSS flat (± 10 %).

    python -m bench.load [--rate 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from bench.acks import command_body, servers, signed
from bench.gate import _percentile
from bench.report import machine
from bot.sandbox.standin import payloads


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)  # MB, sampled every 5 s after a 10 s warm-up

    def summary(self, rate: float, seconds: float) -> str:
        p99 = _percentile(self.latencies, 0.99) * 1000 if self.latencies else float("nan")
        drift = (max(self.rss) - self.rss[0]) / self.rss[0] * 100 if self.rss else float("nan")
        return (
            f"{rate:g} requests/s for {seconds:g} s: {len(self.latencies)} answered, p99 {p99:.0f} ms "
            f"(goal < 300), {len(self.errors)} errors (goal 0), RSS {self.rss[0] if self.rss else 0:.0f} → "
            f"max {max(self.rss, default=0):.0f} MB ({drift:+.1f} %, goal within ± 10 %)"
        )


def _request(i: int, events: str, gate: str, standin: str) -> tuple[str, bytes | None, dict[str, str]]:
    """The i-th request of the mix: (url, body or None for a GET, headers)."""
    kind = i % 5
    if kind in (0, 1):
        body = command_body(standin, "/freeze" if kind == 0 else "/health", "list" if kind == 0 else "", i % 10, i)
        return events, body, signed(body, "application/x-www-form-urlencoded")
    if kind == 2:
        event = payloads.message_event(
            "message",
            "are we down?",
            user=f"U0USER{i % 10}",
            channel="C0GENERAL",
            ts=f"{time.time():.6f}",
            team_id="T0BENCH",
        )
        body = json.dumps(payloads.event_envelope(event, team_id="T0BENCH", event_id=f"Ev{i:08d}")).encode()
        return events, body, signed(body, "application/json")
    if kind == 3:  # a click on a break-glass button whose exemption does not exist: a clear answer, no change
        action = {
            "action_id": "freeze.exemption.refuse",
            "block_id": "b",
            "value": "999999",
            "type": "button",
            "text": {"type": "plain_text", "text": "Refuse"},
            "action_ts": f"{time.time():.6f}",
        }
        payload = payloads.block_actions(
            action,
            team_id="T0BENCH",
            user_id=f"U0USER{i % 10}",
            channel_id="C0GENERAL",
            message={"ts": "1.000001", "blocks": []},
            trigger_id=f"{i}.trigger",
            response_url=f"{standin}/response/click-{i}",
        )
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return events, body, signed(body, "application/x-www-form-urlencoded")
    return gate, None, {"Authorization": "Bearer bench-token"}


async def sustained(database_url: str, tmp: Path, *, rate: float, seconds: float) -> LoadResult:
    import aiohttp

    result = LoadResult()
    async with servers(database_url, tmp) as (standin, urls, pids):
        events = urls["guardrail"]
        gate = events.replace("/slack/events", "/api/v1/freeze?environment=production&service=api")
        pid = pids["guardrail"]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def send(i: int) -> None:
                url, body, headers = _request(i, events, gate, standin)
                started = time.perf_counter()
                try:
                    call = (
                        session.post(url, data=body, headers=headers)
                        if body is not None
                        else session.get(url, headers=headers)
                    )
                    async with call as response:
                        await response.read()
                        if response.status not in (200, 423):
                            result.errors.append(f"{url}: HTTP {response.status}")
                except Exception as exc:
                    result.errors.append(f"{url}: {type(exc).__name__}: {exc}")
                    return
                result.latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            tasks = []
            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
                tasks.append(asyncio.ensure_future(send(i)))
                if i >= rate * 10 and i % int(rate * 5) == 0:
                    result.rss.append(_rss_mb(pid))
            await asyncio.gather(*tasks)
            result.rss.append(_rss_mb(pid))
    return result


async def main(rate: float, seconds: float) -> None:
    from bot.db import migrate

    with tempfile.TemporaryDirectory() as name:
        url = f"sqlite:///{name}/load.db"
        migrate.upgrade(url)
        result = await sustained(url, Path(name), rate=rate, seconds=seconds)
    print(f"machine: {machine()}")
    print(result.summary(rate, seconds))
    for error in result.errors[:10]:
        print(f"  {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
