"""Shared fixtures for the config tests: the shipped example, its environment, and file writing."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from dotenv import dotenv_values

from tests.support.paths import ROOT

_EXAMPLE_DIR = ROOT / "playbooks"
_ENV_EXAMPLE = ROOT / ".env.example"


@pytest.fixture
def example_env() -> dict[str, str]:
    """The variables from .env.example, as an environment mapping."""
    return {key: value for key, value in dotenv_values(_ENV_EXAMPLE).items() if value is not None}


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped playbooks/ directory."""
    target = tmp_path / "playbooks"
    shutil.copytree(_EXAMPLE_DIR, target)
    return target


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented YAML file into tmp_path/conf and return its path."""
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)

    def write(name: str, text: str) -> Path:
        path = conf / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
