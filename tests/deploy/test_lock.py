"""The lock files: complete, in step with pyproject.toml, and installable as the image and Heroku install them.

`requirements.lock` (runtime) is what the Dockerfile, Heroku (through requirements.txt) and the
fresh-venv test install;
`requirements-dev.lock` (runtime + dev + docs) is what `make` installs for tests and CI. Both come
from one `make lock` (uv pip compile, universal, hashed), so the versions tested are the versions shipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
import venv
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
TARGET: dict[str, str] = {
    **{k: str(v) for k, v in default_environment().items()},  # the image: Linux, CPython
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "implementation_name": "cpython",
}


def pins(path: Path) -> dict[str, str]:
    """name → version of every `name==version` line (markers aside: the lock is universal)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if (match := PIN.match(line)) is not None:
            found[str(canonicalize_name(match[1]))] = match[2]
    return found


def hashed(path: Path) -> bool:
    """Every pinned requirement carries at least one --hash (so pip runs in hash-checking mode)."""
    blocks = re.split(r"\n(?=[A-Za-z0-9])", path.read_text())
    return all("--hash=sha256:" in block for block in blocks if PIN.match(block.splitlines()[0]))


def closure(requirements: list[Requirement]) -> dict[str, Requirement]:
    """Every distribution these requirements pull in on Linux/CPython 3.11, from installed metadata."""
    seen: dict[str, Requirement] = {}
    todo = [(req, "") for req in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**TARGET, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name == "guardrail":
            todo.extend((Requirement(r), x) for x in req.extras for r in project()["optional-dependencies"][x])
            continue
        first = name not in seen
        seen.setdefault(name, req)
        wanted = ["", *sorted(req.extras)] if first else sorted(req.extras)
        for dep in metadata.requires(req.name) or []:
            for each in wanted:
                todo.append((Requirement(dep), each))
    return seen


def project() -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return table


def assert_covers(lock: Path, requirements: list[str]) -> None:
    locked = pins(lock)
    missing, wrong = [], []
    for name, req in sorted(closure([Requirement(r) for r in requirements]).items()):
        if name not in locked:
            missing.append(str(req))
        elif not req.specifier.contains(locked[name], prereleases=True):
            wrong.append(f"{req} (locked {locked[name]})")
    assert not missing and not wrong, (
        f"{lock.name} is out of step with pyproject.toml: missing {missing}, wrong version {wrong}. "
        "Run `make lock` and commit the lock files."
    )


def test_the_runtime_lock_covers_every_dependency_and_is_hashed() -> None:
    lock = ROOT / "requirements.lock"
    assert hashed(lock)
    assert_covers(lock, project()["dependencies"])


def test_the_dev_lock_covers_dev_and_docs_and_pins_the_runtime_alike() -> None:
    dev_lock = ROOT / "requirements-dev.lock"
    assert hashed(dev_lock)
    extras = project()["optional-dependencies"]
    assert_covers(dev_lock, [*project()["dependencies"], *extras["dev"], *extras["docs"]])
    runtime, dev = pins(ROOT / "requirements.lock"), pins(dev_lock)
    differs = {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version}
    assert not differs, f"the dev lock tests other versions than the image ships: {differs}; run `make lock`"


def test_this_environment_runs_the_locked_versions() -> None:
    """The suite tests what ships: what `make` installed matches the dev lock."""
    locked = pins(ROOT / "requirements-dev.lock")
    installed = {str(canonicalize_name(d.metadata["Name"])): d.version for d in metadata.distributions()}
    off = {
        name: (version, installed[name])
        for name, version in locked.items()
        if name in installed and installed[name] != version
    }
    assert not off, f"installed versions differ from requirements-dev.lock: {off}; run `make clean test`"


def test_pre_commit_runs_the_locked_ruff() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    [ruff] = [repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == f"v{pins(ROOT / 'requirements-dev.lock')['ruff']}", "make pre-commit's ruff match the lock"
    assert {hook["id"] for repo in config["repos"] for hook in repo["hooks"]} == {"ruff", "ruff-format", "mypy"}


def test_a_missing_dependency_is_reported(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(re.sub(r"(?ms)^pyyaml==.*?(?=^\S)", "", (ROOT / "requirements.lock").read_text()))
    with pytest.raises(AssertionError, match=r"missing \['pyyaml>=6'\].*make lock"):
        assert_covers(lock, ["pyyaml>=6"])
    lock.write_text("pyyaml==5.4 \\\n    --hash=sha256:00\n")
    with pytest.raises(AssertionError, match=r"wrong version \['pyyaml>=6 \(locked 5.4\)'\]"):
        assert_covers(lock, ["pyyaml>=6"])


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new venv holding only the runtime lock and the project, installed as Heroku and the image do.

    Heroku's buildpack: `pip install -r requirements.txt` (which is `-r requirements.lock`), then the
    `bin/post_compile` hook installs the project. Binary wheels only and hash-checked, as in the
    Dockerfile (no compiler reaches the image), and the hook adds no dependency, so `pip check`
    proves the lock complete. About 30-40 s with a warm pip cache: the one test that shows the lock
    installs, so it stays in the suite.
    """
    home = tmp_path_factory.mktemp("fresh-venv")
    venv.create(home, with_pip=True)
    env = {**os.environ, "PATH": f"{home / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for command in (
        [
            str(home / "bin" / "pip"),
            "install",
            "-q",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "-r",
            "requirements.txt",
        ],
        [str(ROOT / "bin" / "post_compile")],
        [str(home / "bin" / "pip"), "check"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    yield home


def guardrail(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, run outside the checkout so only the installed package is importable."""
    clean = {"PATH": f"{home / 'bin'}:{os.environ['PATH']}", "HOME": str(home), **(env or {})}
    return subprocess.run(
        [str(home / "bin" / "guardrail"), *args], capture_output=True, text=True, env=clean, cwd=home, timeout=120
    )


def test_the_lock_installs_into_a_fresh_venv_and_guardrail_runs(fresh_venv: Path, database_url: str) -> None:
    result = guardrail(fresh_venv, "--help")
    assert result.returncode == 0 and "migrate" in result.stdout, result.stderr
    migrate = guardrail(fresh_venv, "migrate", env={"DATABASE_URL": database_url})
    assert migrate.returncode == 0, migrate.stderr
    assert "is at the latest schema" in migrate.stdout
    again = guardrail(fresh_venv, "migrate", env={"DATABASE_URL": database_url})
    assert again.returncode == 0, again.stderr  # a second release phase / Job run is harmless


def test_the_installed_package_checks_the_shipped_playbooks(fresh_venv: Path) -> None:
    example = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    result = guardrail(
        fresh_venv, "check-config", "--yaml-only", env={**example, "GUARDRAIL_CONFIG": str(ROOT / "playbooks")}
    )
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
