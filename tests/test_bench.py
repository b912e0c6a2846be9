"""The benchmark harness keeps working: `python -m bench --quick` runs every part once, tiny."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def test_the_benchmark_command_runs_every_part_and_writes_its_report(tmp_path: Path, redis_url: str) -> None:
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = output.read_text()
    assert "cores" in report and "load average" in report
    for measure in (
        "import bot.cli",
        "check-config",
        "ack p99, `/freeze list`, 10 users, SQLite",
        "ack p99, `/health`, 1 user, SQLite",
        "ack + respond() control",
        "gate req/s",
        "rq_replay 50 failed jobs",
        "most in any sliding second",
        "startup to `/healthz`",
        "idle RSS",
        "lateness p99, 200 windows in the table, 60 notices",
        "probes per target per round",
        "change watch alarm latency",
    ):
        row = next((line for line in report.splitlines() if measure in line), None)
        assert row is not None and row.count("|") == 6, (measure, report)


def test_only_runs_the_parts_named_and_refuses_an_unknown_one(tmp_path: Path, redis_url: str) -> None:
    output = tmp_path / "RESULTS.md"
    command = [sys.executable, "-m", "bench", "--quick", "--only", "rq", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in output.read_text().splitlines() if line.startswith("| ") and "measure" not in line]
    assert rows and all("rq_replay" in row for row in rows), rows

    wrong = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "gate,lateness,ackz"], capture_output=True, text=True, cwd=ROOT
    )
    assert wrong.returncode == 2
    assert "unknown part(s) ackz; the parts are startup, lateness, acks, gate" in wrong.stderr
