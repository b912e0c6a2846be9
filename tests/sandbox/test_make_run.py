"""`make run` chooses: `guardrail serve` with a Slack bot token configured, the sandbox without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent


@pytest.mark.parametrize(
    ("env_file", "environ", "configured"),
    [
        ("", {}, False),
        ("SLACK_BOT_TOKEN=xoxb-1-2-abc\n", {}, True),
        ("", {"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, True),
        ("SLACK_BOT_TOKEN=\n", {}, False),  # .env.example leaves it empty
        ("", {"GUARDRAIL_AUDIT_KEY": "short"}, True),  # invalid settings: serve says what is wrong
    ],
    ids=["nothing", "dot-env", "environment", "empty", "invalid-settings"],
)
def test_make_run_serves_real_slack_only_with_a_token(
    tmp_path: Path, env_file: str, environ: dict[str, str], configured: bool
) -> None:
    (tmp_path / ".env").write_text(env_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_"))}
    env |= {"PYTHONPATH": str(ROOT), **environ}
    result = subprocess.run(
        [sys.executable, "-m", "bot.sandbox.configured"],
        cwd=tmp_path,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert result.returncode == (0 if configured else 1), result.stderr


def test_make_run_says_in_one_line_how_to_switch_to_real_slack() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nrun:") :].split("\n\n")[0]
    assert "bot.sandbox.configured" in recipe and "guardrail sandbox" in recipe and "guardrail serve" in recipe
    said = [line for line in recipe.splitlines() if "echo" in line]
    assert len(said) == 1 and "SLACK_BOT_TOKEN" in said[0] and ".env" in said[0]
