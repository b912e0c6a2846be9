"""Import rules from STYLE.md, enforced: services never import a transport."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

BOT = Path(__file__).parent.parent / "bot"
TRANSPORTS = ("slack_bolt", "slack_sdk", "starlette", "httpx", "uvicorn", "bot.slack", "bot.web", "bot.cli")
SQL = ("sqlalchemy", "sqlmodel")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_services_and_config_never_import_a_transport() -> None:
    offenders = []
    for folder in ("services", "config", "db"):
        for path in (BOT / folder).rglob("*.py"):
            for name in _imports(path):
                if name.startswith(TRANSPORTS):
                    offenders.append(f"{path.relative_to(BOT.parent)} imports {name}")
    assert offenders == []


def test_services_leave_sql_to_the_db_package() -> None:
    offenders = [f"{path.relative_to(BOT.parent)} imports {name}"
                 for path in (BOT / "services").rglob("*.py") for name in _imports(path) if name.startswith(SQL)]
    assert offenders == []


def test_services_leave_metrics_to_the_edges() -> None:
    """Metrics are counted where requests, ticks and checks enter or leave (web, Slack, scheduler, the
    check runner's observer), so the product works and is tested without Prometheus."""
    offenders = [f"{path.relative_to(BOT.parent)} imports {name}"
                 for folder in ("services", "config", "db", "checks", "actions")
                 for path in (BOT / folder).rglob("*.py") for name in _imports(path)
                 if name.startswith(("prometheus_client", "bot.metrics"))]
    assert offenders == []


def test_the_freeze_gate_decision_loads_without_sqlalchemy() -> None:
    """The gate's decision and snapshot are pure: importing them pulls in no SQL library."""
    probe = ("import sys, bot.services.freeze_gate; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=BOT.parent, capture_output=True, text=True,
                            check=True, timeout=60).stdout.strip()
    assert loaded == "[]", loaded


def test_the_package_never_imports_the_tests() -> None:
    offenders = [f"{path.relative_to(BOT.parent)} imports {name}" for path in BOT.rglob("*.py")
                 for name in _imports(path) if name == "tests" or name.startswith("tests.")]
    assert offenders == []


def test_the_slack_standin_is_slack_not_the_bot() -> None:
    """The stand-in (and the provider fakes) know nothing of guardrail's features: they are Slack,
    Heroku and Kubernetes, shared by the tests and the sandbox."""
    allowed = {"standin": ("bot.sandbox.standin",), "fakes": ("bot.sandbox.standin", "bot.sandbox.fakes")}
    offenders = [f"{path.relative_to(BOT.parent)} imports {name}"
                 for folder, ok in allowed.items() for path in (BOT / "sandbox" / folder).rglob("*.py")
                 for name in _imports(path) if name.startswith("bot") and not name.startswith(ok)]
    assert offenders == []


def test_no_feature_knows_about_the_sandbox() -> None:
    """No sandbox branches inside features: only the CLI starts it."""
    offenders = [f"{path.relative_to(BOT.parent)} imports {name}" for path in BOT.rglob("*.py")
                 if "sandbox" not in path.relative_to(BOT).parts and path.name != "cli.py"
                 for name in _imports(path) if name.startswith("bot.sandbox")]
    assert offenders == []
