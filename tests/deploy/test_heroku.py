"""Heroku: app.json, the Procfile, .python-version and what the Python buildpack installs agree with the code.

The build itself (requirements.txt, then bin/post_compile) runs in tests/deploy/test_lock.py's fresh venv.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from bot.settings import Settings
from tests.support.paths import ROOT

REQUIRED_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")  # ${VAR}: must be set (no :-default)


def app_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "app.json").read_text())
    return data


def procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            assert re.fullmatch(r"[a-z][a-z0-9_-]*", name), f"bad process type {name!r}"
            processes[name] = command.strip()
    return processes


def test_the_procfile_serves_and_migrates_in_the_release_phase() -> None:
    processes = procfile()
    assert processes == {"web": "guardrail serve", "release": "guardrail migrate"}
    for command in processes.values():
        _, subcommand = command.split()
        help_ = subprocess.run(
            [sys.executable, "-m", "bot", subcommand, "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert help_.returncode == 0, help_.stderr
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["guardrail"] == "bot.cli:main"  # what bin/post_compile's install puts on PATH


def test_app_json_runs_two_web_dynos_on_heroku_postgres_and_names_what_the_procfile_runs() -> None:
    app = app_json()
    assert {"plan": "heroku-postgresql:essential-0", "as": "DATABASE"} in app["addons"]
    assert app["buildpacks"] == [{"url": "heroku/python"}]
    assert set(app["formation"]) <= set(procfile()) - {"release"}
    assert app["formation"]["web"]["quantity"] == 2
    assert app["formation"]["web"]["size"] not in ("eco", "basic")  # those cannot run more than one dyno
    program = app["scripts"]["postdeploy"].split()
    assert program[0] == "guardrail" and program[1] in {"check-config", "migrate"}


def strings(node: Any) -> list[str]:
    """Every string value in parsed YAML (comments, where ${VAR} is explained, are not values)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return []


def test_every_variable_in_app_json_is_described_and_known_and_none_is_missing() -> None:
    env = app_json()["env"]
    settings = {name.upper() for name in Settings.model_fields}
    playbooks = " ".join(strings([yaml.safe_load(p.read_text()) for p in (ROOT / "playbooks").glob("*.yaml")]))
    needed = set(REQUIRED_VAR.findall(playbooks))
    mentioned = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", playbooks))
    for name, spec in env.items():
        assert spec.get("description"), f"{name} has no description"
        assert name in settings or name in mentioned, f"{name} is neither a setting nor used by a playbook"
    assert "DATABASE_URL" not in env  # the add-on sets it
    assert needed <= set(env), f"the shipped playbooks need {sorted(needed - set(env))} set"
    for name in needed:
        assert env[name].get("required") or env[name].get("value"), f"{name} could be left unset"
    assert env["SLACK_BOT_TOKEN"]["required"] is True
    assert env["GUARDRAIL_CONFIG"]["value"] == "playbooks" and (ROOT / "playbooks").is_dir()


def test_the_buildpack_gets_the_lock_and_the_python_the_image_uses() -> None:
    assert [
        line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")
    ] == ["-r requirements.lock"]
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version), "the buildpack wants the major version form, e.g. 3.11"
    image = DockerfileParser(str(ROOT / "Dockerfile")).parent_images
    assert all(base.startswith(f"python:{version}-") for base in image), image
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={version}"
    hook = ROOT / "bin" / "post_compile"
    assert os.access(hook, os.X_OK)
    assert "--no-deps" in hook.read_text()
