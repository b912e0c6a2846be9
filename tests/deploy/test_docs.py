"""The docs site builds with `mkdocs build --strict` (broken links, missing pages and nav drift fail it),
and the operations page names only files that exist, and every deployment file there is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT

DOCS = ROOT / "docs"


def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in (
        "index.html",
        "getting-started/index.html",
        "operations/index.html",
        "contributing/index.html",
        "reference/configuration/index.html",
        "ci-gate/index.html",
        "benchmarks/index.html",
    ):
        assert (site / page).is_file(), page
    contributing = (site / "contributing" / "index.html").read_text()
    assert "make lock" in contributing  # CONTRIBUTING.md is included, not copied
    results = (ROOT / "bench" / "RESULTS.md").read_text().splitlines()[0].removeprefix("# ")
    assert results in (site / "benchmarks" / "index.html").read_text()  # so is bench/RESULTS.md, with its date


def nav_pages(entries: list[Any]) -> set[str]:
    """Every page the nav lists, sections included."""
    pages: set[str] = set()
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages |= nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_pages(config["nav"])
    assert listed == {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}


def test_the_operations_page_names_real_files_and_every_deployment_file() -> None:
    text = (DOCS / "operations.md").read_text()
    named = set(
        re.findall(r"(?<![\w/.-])((?:deploy/kubernetes/|tests/[\w/]+/)?[\w.-]+\.(?:yaml|json|lock|txt|py))\b", text)
    )
    assert "deploy/kubernetes/rbac.yaml" in named and "tests/deploy/test_backup.py" in named
    for name in named:
        assert (ROOT / name).exists() or (ROOT / "deploy" / "kubernetes" / name).exists(), name
    for manifest in (ROOT / "deploy" / "kubernetes").glob("*.yaml"):
        assert manifest.name in text, f"docs/operations.md does not mention {manifest.name}"
    for file in ("Dockerfile", "compose.yaml", "app.json", "Procfile", "requirements.lock", "bin/post_compile"):
        assert file in text, f"docs/operations.md does not mention {file}"


def test_the_references_are_generated_from_the_current_code() -> None:
    """docs/reference/configuration.md and cli.md are written by tools/; a changed setting, config model or
    command without `make reference` fails here, so the references never drift from the code."""
    for tool in ("tools/config_reference.py", "tools/cli_reference.py"):
        result = subprocess.run([sys.executable, tool, "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    page = (DOCS / "reference" / "configuration.md").read_text()
    from bot.config.models import GuardrailConfig
    from bot.settings import Settings

    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in page, name
    for name, field in GuardrailConfig.model_fields.items():
        assert f"| `{field.alias or name}` |" in page, name


def test_the_readme_is_short_and_its_links_lead_somewhere() -> None:
    """The README is what a newcomer reads first: under 200 lines, and every relative link (the docs site
    is outside mkdocs' link check when read on GitHub) names a file that exists."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL))
    local = [link for link in links if "://" not in link]
    assert "docs/getting-started.md" in local and "docs/reference/configuration.md" in local
    for link in local:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
