"""Starting the command stays cheap: what only some commands need is imported by those commands."""

from __future__ import annotations

import subprocess
import sys

from tests.support.cli import cli_env
from tests.support.paths import ROOT

# Each costs 0.1 to 0.3 s to import; `check-config` and `--help` need none of them.
HEAVY = ("alembic", "sqlalchemy", "sqlmodel", "redis", "rq", "httpx", "slack_bolt", "starlette", "uvicorn")

PROBE = """
import sys
from bot.cli import main
try:
    main(sys.argv[1:])
finally:
    print("LOADED", *sorted(m for m in {heavy} if m in sys.modules), file=sys.stderr)
"""


def loaded_by(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=60,
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("LOADED"), result.stderr
    return last.split()[1:]


def test_check_config_imports_no_database_redis_or_http_client() -> None:
    # The shipped configuration has an rq_replay step, an rq check and an http action.
    assert loaded_by("check-config", "--yaml-only") == []
    # Checking the settings too parses DATABASE_URL with SQLAlchemy's URL parser, and nothing more.
    assert set(loaded_by("check-config")) <= {"sqlalchemy"}


def test_help_imports_none_of_them_either() -> None:
    assert loaded_by("--help") == []
