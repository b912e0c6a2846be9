"""The Dockerfile and compose.yaml, tested without a Docker engine (none runs on this machine or in CI).

What a build would prove and can be proved here: the Dockerfile parses and keeps the image rules
(multi-stage, slim base, hashed lock, non-root, health check, entrypoint); everything it copies exists
and survives .dockerignore; its HEALTHCHECK command works against a running `guardrail serve` and fails
when nothing answers; compose.yaml has the services and ordering the docs describe. The installed
entrypoint itself (`guardrail migrate`, `--help`) runs in tests/deploy/test_lock.py from a fresh venv
built with the Dockerfile's own install commands.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml
from dockerfile_parse import DockerfileParser

from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.serve import serving, shipped_env

COMPILERS = ("gcc", "g++", "build-essential", "clang", "make ")


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, split at each FROM (comments dropped)."""
    parsed = DockerfileParser(str(ROOT / "Dockerfile"))
    result: list[list[dict[str, Any]]] = []
    for instruction in parsed.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(instruction)
    return result


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def final_env() -> dict[str, str]:
    parsed = DockerfileParser(str(ROOT / "Dockerfile"))
    env: dict[str, str] = parsed.envs
    return env


def test_the_dockerfile_is_multi_stage_on_a_slim_base_and_installs_only_the_lock() -> None:
    build, *_, final = stages()
    parsed = DockerfileParser(str(ROOT / "Dockerfile"))
    assert len(stages()) >= 2
    assert all(image.startswith("python:3.11-slim") for image in parsed.parent_images), parsed.parent_images
    installs = " ".join(values(build, "RUN"))
    assert "--require-hashes" in installs and "-r requirements.lock" in installs
    assert "--only-binary :all:" in installs  # no sdist, so no compiler is ever needed
    assert "--no-deps ." in installs  # the project adds nothing beyond the lock
    for run in values(final, "RUN"):
        assert "pip install" not in run and not any(tool in run for tool in COMPILERS), run
        assert "apt-get install" not in run, run
    copies = values(final, "COPY")
    assert any(c.startswith("--from=build /opt/guardrail") for c in copies), copies


def test_the_final_image_runs_guardrail_as_a_non_root_user_with_a_health_check() -> None:
    final = stages()[-1]
    [user] = values(final, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be numeric so Kubernetes' runAsNonRoot can verify it"
    assert json.loads(values(final, "ENTRYPOINT")[-1]) == ["guardrail"]
    assert json.loads(values(final, "CMD")[-1]) == ["serve"]
    [health] = values(final, "HEALTHCHECK")
    assert "/healthz" in health and "CMD" in health
    assert final_env()["GUARDRAIL_CONFIG"] == "/app/playbooks"
    assert values(final, "EXPOSE") == [final_env()["PORT"]]


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def test_everything_the_dockerfile_copies_exists_and_is_not_dockerignored() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources: list[str] = []
    for stage in stages():
        for copy in values(stage, "COPY"):
            words = [w for w in shlex.split(copy) if not w.startswith("--")]
            if not copy.startswith("--from"):
                sources.extend(words[:-1])
    assert "requirements.lock" in sources and "bot" in sources and "playbooks" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
        for file in (ROOT / source).rglob("*.py") if (ROOT / source).is_dir() else []:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not ignored(relative, patterns), f"{relative}: excluded by .dockerignore"
    for secret in (".env", ".venv/bin/python", "guardrail.db", "tests/conftest.py", ".git/HEAD"):
        assert ignored(secret, patterns), f"{secret} would be sent to the Docker daemon"


def healthcheck_command() -> list[str]:
    [health] = values(stages()[-1], "HEALTHCHECK")
    command = health.split(" CMD ", 1)[1].strip()
    assert not any(tool in command for tool in ("curl", "wget")), "a slim image has neither curl nor wget"
    return ["/bin/sh", "-c", command]  # the shell form, as Docker runs it


async def test_the_health_check_passes_on_a_serving_guardrail_and_fails_when_nothing_answers(tmp_path: Path) -> None:
    async with serving(shipped_env(tmp_path), tmp_path / "serve.log") as base:
        port = httpx.URL(base).port
        healthy = await asyncio.to_thread(
            subprocess.run,
            healthcheck_command(),
            env={**os.environ, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert healthy.returncode == 0, healthy.stderr
    down = await asyncio.to_thread(
        subprocess.run,
        healthcheck_command(),
        env={**os.environ, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode != 0
    assert "Connection refused" in down.stderr


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_runs_postgres_then_a_one_shot_migrate_then_two_replicas() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "guardrail", "proxy"}
    migrate_, app = services["migrate"], services["guardrail"]
    assert migrate_["command"] == ["migrate"] and migrate_["restart"] == "no"
    assert migrate_["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["command"] == ["serve"] and app["deploy"]["replicas"] == 2
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for service in (migrate_, app):
        assert service["build"] == "." and service["image"] == "guardrail:local"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://guardrail:")
        assert "@postgres:5432/guardrail" in service["environment"]["DATABASE_URL"]
        assert "./playbooks:/app/playbooks:ro" in service["volumes"]
    # Replicas cannot each publish the same host port, nor share a container name.
    assert "ports" not in app and "container_name" not in app
    assert services["proxy"]["command"][-1] == "guardrail:3000"
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
