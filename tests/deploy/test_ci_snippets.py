"""The CI snippets in docs/ci-gate.md work as written: run against a real guardrail, they record the deploy
before deploying, never deploy while production is frozen, and record once when run again.

The GitHub Actions steps run under bash as the hosted runner runs them (`bash -eo pipefail`), the GitLab
script lines one after another under sh, each stopping at the first failure, as GitLab does; the
`./deploy.sh` they call is a stand-in that writes down that it ran."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import API_TOKEN, BotHarness, running_bot

ROOT = Path(__file__).parent.parent.parent
PAGE = ROOT / "docs" / "ci-gate.md"
SHA = "4f2a9c1e0b7d3a6f8e5c2b1d9a0f7e6c5b4a3d2e"


def snippet(heading: str) -> dict[str, Any]:
    """The first YAML block after `### <heading>` on the page."""
    text = PAGE.read_text()
    section = text[text.index(f"### {heading}\n") :]
    block = re.search(r"^```yaml\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block, f"no YAML block under {heading}"
    loaded: dict[str, Any] = yaml.safe_load(block.group(1))
    return loaded


@dataclass
class Run:
    code: int
    output: str
    deployed: bool


async def run_shell(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def workspace(tmp_path: Path) -> Path:
    """A checkout whose ./deploy.sh records that it ran (and with which argument)."""
    work = tmp_path / "checkout"
    work.mkdir(exist_ok=True)
    script = work / "deploy.sh"
    script.write_text('#!/bin/sh\necho "$1" >> deployed.txt\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (work / "deployed.txt").unlink(missing_ok=True)
    return work


async def run_github(bot: BotHarness, work: Path, attempt: int = 1) -> Run:
    steps = snippet("GitHub Actions")["jobs"]["deploy"]["steps"]
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "GITHUB_SHA": SHA,
        "GITHUB_ACTOR": "carol",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/api",
        "GITHUB_RUN_ID": "7001",
        "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_JOB": "deploy",
    }
    output = ""
    for step in steps:
        if "run" not in step:
            continue  # actions/checkout: the workspace is already there
        env = {**base, **{k: str(v) for k, v in step.get("env", {}).items()}}
        assert (
            env.get("GUARDRAIL_API_TOKEN", "${{ secrets.GUARDRAIL_API_TOKEN }}") == "${{ secrets.GUARDRAIL_API_TOKEN }}"
        )  # the token comes from the repository's secrets
        if "GUARDRAIL_URL" in env:
            env |= {"GUARDRAIL_URL": bot.url, "GUARDRAIL_API_TOKEN": API_TOKEN}
        code, out = await run_shell(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], env, work)
        output += out
        if code != 0:
            return Run(code, output, (work / "deployed.txt").exists())
    return Run(0, output, (work / "deployed.txt").exists())


async def run_gitlab(bot: BotHarness, work: Path, job_id: str = "88001") -> Run:
    job = snippet("GitLab CI")["deploy"]
    assert "curl" in job["image"]["name"] and job["image"]["entrypoint"] == [""]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "CI_COMMIT_SHA": SHA,
        "GITLAB_USER_LOGIN": "carol",
        "CI_PIPELINE_URL": "https://gitlab.example.com/acme/api/-/pipelines/501",
        "CI_JOB_ID": job_id,
        "GUARDRAIL_URL": bot.url,
        "GUARDRAIL_API_TOKEN": API_TOKEN,
    }
    output = ""
    for line in job["script"]:
        assert not re.search(r"\b(git|pip|python)\b", line.split("-d", 1)[0]), line  # a slim image has only curl
        code, out = await run_shell(["sh", "-c", line], env, work)
        output += out
        if code != 0:
            return Run(code, output, (work / "deployed.txt").exists())
    return Run(0, output, (work / "deployed.txt").exists())


RUNNERS: dict[str, Callable[[BotHarness, Path], Awaitable[Run]]] = {"github": run_github, "gitlab": run_gitlab}


@pytest.fixture
async def bot(sqlite_url: str, config_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[BotHarness]:
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as harness:
        yield harness


def recorded(output: str) -> dict[str, Any]:
    """The deploy guardrail answered with (curl prints the 201's body)."""
    body: dict[str, Any] = json.loads(output[output.index("{") : output.rindex("}") + 1])
    return body


@pytest.mark.parametrize("ci", ["github", "gitlab"])
async def test_the_snippet_records_the_deploy_then_deploys(ci: str, bot: BotHarness, tmp_path: Path) -> None:
    run = await RUNNERS[ci](bot, workspace(tmp_path))
    assert run.code == 0, run.output
    assert run.deployed and (tmp_path / "checkout" / "deployed.txt").read_text() == "production\n"
    deploy = recorded(run.output)
    assert (deploy["environment"], deploy["service"], deploy["version"], deploy["actor"]) == (
        "production",
        "api",
        SHA,
        "api:carol",
    )
    assert deploy["url"].startswith("https://")
    last = await bot.runtime.deploys.recent("production")
    assert [(d.service, d.version) for d in last] == [("api", SHA)]


@pytest.mark.parametrize("ci", ["github", "gitlab"])
async def test_while_production_is_frozen_the_snippet_stops_before_deploying(
    ci: str, bot: BotHarness, tmp_path: Path
) -> None:
    await bot.runtime.freezes.create(
        starts_at=bot.clock.now(),
        ends_at=bot.clock.now() + timedelta(hours=2),
        environment="production",
        reason="Demo Day",
        actor="U0CAROL",
    )
    run = await RUNNERS[ci](bot, workspace(tmp_path))
    assert run.code != 0 and not run.deployed, run.output
    assert "Demo Day" in run.output  # --fail-with-body: the log says which window blocks
    assert await bot.runtime.deploys.recent("production") == []


@pytest.mark.parametrize("ci", ["github", "gitlab"])
async def test_running_the_same_job_again_records_the_deploy_once(ci: str, bot: BotHarness, tmp_path: Path) -> None:
    first = await RUNNERS[ci](bot, workspace(tmp_path))
    again = await RUNNERS[ci](bot, workspace(tmp_path))  # the same run id and attempt: curl's own retry
    assert first.code == again.code == 0, first.output + again.output
    assert recorded(first.output)["id"] == recorded(again.output)["id"]
    retried = await (
        run_github(bot, workspace(tmp_path), attempt=2)
        if ci == "github"
        else run_gitlab(bot, workspace(tmp_path), job_id="88002")
    )
    assert retried.code == 0 and recorded(retried.output)["id"] != recorded(first.output)["id"]  # a re-run asks again
