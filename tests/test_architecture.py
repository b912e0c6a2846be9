"""Import rules from STYLE.md, enforced: services never import a transport."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

BOT = ROOT / "bot"
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
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in (BOT / "services").rglob("*.py")
        for name in _imports(path)
        if name.startswith(SQL)
    ]
    assert offenders == []


def test_services_leave_metrics_to_the_edges() -> None:
    """Metrics are counted where requests, ticks and checks enter or leave (web, Slack, scheduler, the
    check runner's observer), so the product works and is tested without Prometheus."""
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for folder in ("services", "config", "db", "checks", "actions")
        for path in (BOT / folder).rglob("*.py")
        for name in _imports(path)
        if name.startswith(("prometheus_client", "bot.metrics"))
    ]
    assert offenders == []


def test_the_freeze_gate_decision_loads_without_sqlalchemy() -> None:
    """The gate's decision and snapshot are pure: importing them pulls in no SQL library."""
    probe = (
        "import sys, bot.services.freeze.gate; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=BOT.parent, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]", loaded


# Slack markup: a user or channel mention, a user-group mention, *bold*.
MARKUP = re.compile(r"<@|<#|<!subteam|(?<![\w*])\*[^*\s][^*\n]*?\*(?![\w*])")

# Services that still write Slack markup into what they return, with the number of string literals
# that do: none (issue 9, step 3). Services return codes and data; `bot/slack/*_view.py` says them.
STILL_SPEAKING_SLACK: dict[str, int] = {}


def _literals(tree: ast.AST) -> list[str]:
    """Every string a module builds (f-strings with {} for their fields), docstrings left out."""
    docstrings: set[int] = set()
    parts: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            docstrings.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            parts.update(id(value) for value in node.values)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append("".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in parts
        ):
            found.append(node.value)
    return found


def test_services_return_domain_words_not_slack_markup() -> None:
    speaking = {}
    for path in sorted((BOT / "services").rglob("*.py")):
        count = sum(1 for text in _literals(ast.parse(path.read_text())) if MARKUP.search(text))
        if count:
            speaking[str(path.relative_to(BOT.parent))] = count
    assert speaking == STILL_SPEAKING_SLACK


def test_the_markup_check_sees_mentions_and_bold() -> None:
    tree = ast.parse('who = "U1"\nx = f"run by <@{who}>"\ny = f"*{who}* failed"\nz = "**Markdown** is fine"')
    assert [bool(MARKUP.search(text)) for text in _literals(tree)] == [False, True, True, False]


def test_services_import_no_slack_library() -> None:
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in (BOT / "services").rglob("*.py")
        for name in _imports(path)
        if name.startswith(("slack_sdk", "slack_bolt", "bot.slack"))
    ]
    assert offenders == []


def test_actions_and_checks_never_import_services() -> None:
    """What a playbook step or a probe may ask of the rest (`ServiceProber`) lives in `bot/checks/`."""
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for folder in ("actions", "checks")
        for path in (BOT / folder).rglob("*.py")
        for name in _imports(path)
        if name.startswith(("bot.services", "bot.runtime", "bot.slack"))
    ]
    assert offenders == []


def test_views_import_no_database() -> None:
    """Views (`bot/slack/*_view.py`) render what services returned; they read nothing themselves."""
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in (BOT / "slack").glob("*_view.py")
        for name in _imports(path)
        if name.startswith(("bot.db", "bot.runtime", *SQL))
    ]
    assert offenders == []


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
REGISTER_LINES = 15  # wiring only: about one line per listener
HANDLER_LINES = 50  # "a module-level function or a small class method of a few dozen lines" (issue 9)


def _lines(node: ast.stmt) -> int:
    return (node.end_lineno or node.lineno) - node.lineno + 1


def _fat_handlers(tree: ast.Module) -> list[str]:
    """What makes a Slack feature module more than a list of thin handlers: a `register` that does
    more than wire (a closure, or too long), or a function too long to read at a glance."""
    problems = [
        f"{node.name} (line {node.lineno}) is {_lines(node)} lines"
        for node in ast.walk(tree)
        if isinstance(node, FUNCTIONS) and _lines(node) > HANDLER_LINES
    ]
    for register in (n for n in tree.body if isinstance(n, FUNCTIONS) and n.name == "register"):
        inner = [n.name for n in ast.walk(register) if isinstance(n, (*FUNCTIONS, ast.ClassDef)) and n is not register]
        if inner:
            problems.append(f"register defines {', '.join(inner)}: make them handler methods or functions")
        if _lines(register) > REGISTER_LINES:
            problems.append(f"register is {_lines(register)} lines (at most {REGISTER_LINES}: it only wires)")
    return problems


def test_slack_features_are_thin_handlers_that_register_only_wires() -> None:
    """Each `bot/slack/<feature>.py` is a list of handlers (parse → service → view): module-level
    functions or methods of a handler class like `IncidentHandlers`, and a short `register` that
    wires them to Bolt. (`register` had grown into 170 lines of closures in `changes.py`.)"""
    features, problems = set(), []
    for path in sorted((BOT / "slack").glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, FUNCTIONS) and n.name == "register" for n in tree.body):
            features.add(path.stem)
            problems += [f"{path.relative_to(BOT.parent)}: {problem}" for problem in _fat_handlers(tree)]
    assert {"audit", "changes", "freeze", "health", "incidents"} <= features
    assert problems == []


def test_the_thin_handler_check_sees_closures_in_register() -> None:
    old_shape = ast.parse(
        "def register(app, runtime):\n"
        "    @app.command('/audit')\n"
        "    async def audit_command(ack):\n"
        "        await ack()\n"
    )
    new_shape = ast.parse(
        "class AuditHandlers:\n"
        "    async def audit_command(self, ack):\n"
        "        await ack()\n"
        "def register(app, runtime):\n"
        "    app.command('/audit')(AuditHandlers().audit_command)\n"
    )
    assert _fat_handlers(old_shape) == ["register defines audit_command: make them handler methods or functions"]
    assert _fat_handlers(new_shape) == []


def _service_classes() -> set[str]:
    """The services: the classes the `Runtime` holds that come from `bot.services`."""
    tree = ast.parse((BOT / "runtime.py").read_text())
    from_services = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot.services")
        for alias in node.names
    }
    [runtime] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Runtime"]
    held = {
        node.annotation.id
        for node in runtime.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.annotation, ast.Name)
    }
    return held & from_services


def test_only_the_runtime_constructs_a_service() -> None:
    """`build_runtime` is the one composition root: CLI, server, scheduler and tests get the same
    wiring (tests replace collaborators through `Overrides`)."""
    services = _service_classes()
    assert {"FreezeService", "HealthService", "IncidentService", "Deploys", "Outbox"} <= services
    offenders = []
    for path in BOT.rglob("*.py"):
        if path == BOT / "runtime.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in services:
                    offenders.append(f"{path.relative_to(BOT.parent)}:{node.lineno} builds {name}")
    assert offenders == []


def test_the_package_never_imports_the_tests() -> None:
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in BOT.rglob("*.py")
        for name in _imports(path)
        if name == "tests" or name.startswith("tests.")
    ]
    assert offenders == []


def test_the_slack_standin_is_slack_not_the_bot() -> None:
    """The stand-in (and the provider fakes) know nothing of guardrail's features: they are Slack,
    Heroku and Kubernetes, shared by the tests and the sandbox."""
    allowed = {"standin": ("bot.sandbox.standin",), "fakes": ("bot.sandbox.standin", "bot.sandbox.fakes")}
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for folder, ok in allowed.items()
        for path in (BOT / "sandbox" / folder).rglob("*.py")
        for name in _imports(path)
        if name.startswith("bot") and not name.startswith(ok)
    ]
    assert offenders == []


def test_no_feature_knows_about_the_sandbox() -> None:
    """No sandbox branches inside features: only the CLI starts it."""
    offenders = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in BOT.rglob("*.py")
        if "sandbox" not in path.relative_to(BOT).parts and path.name != "cli.py"
        for name in _imports(path)
        if name.startswith("bot.sandbox")
    ]
    assert offenders == []


def _is_test_module(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def _imported_modules(source: str, package: str) -> set[str]:
    """The dotted modules `source` (a module of `package`) imports, relative imports resolved, and
    `from package import name` counted as `package.name` too (it may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_imports_another_test_module() -> None:
    """Shared helpers live in tests/support/ (CONTRIBUTING): a test module that imports another one
    (or a conftest) ties its tests to that module's and runs its fixtures wherever it is imported."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("tests", "bench", "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in sorted(_imported_modules(path.read_text(), ".".join(path.relative_to(ROOT).parts[:-1])))
        if name.startswith(("tests.", "bench.", "tools.")) and _is_test_module(name)
    ]
    assert offenders == []


def test_the_test_import_rule_sees_absolute_and_relative_imports() -> None:
    package = "tests.scenarios.changes"
    for source in (
        "from tests.scenarios.changes.test_change_watch import deploy",
        "from .test_change_watch import deploy",
        "from . import test_change_watch",
        "from ..incidents.conftest import fbot",
        "import tests.scenarios.incidents.conftest",
    ):
        assert any(_is_test_module(name) for name in _imported_modules(source, package)), source
    helpers = _imported_modules("from tests.support.changes import deploy", package)
    assert not any(_is_test_module(name) for name in helpers)


def _assigned_attributes(source: str) -> list[tuple[int, str]]:
    """(line, target) of every assignment to an attribute in `source`, `setattr(obj, name, …)` included
    (as `obj.name`), in line order."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr") and len(node.args) >= 2:
            name = (
                ast.literal_eval(node.args[1]) if isinstance(node.args[1], ast.Constant) else ast.unparse(node.args[1])
            )
            found.append((node.lineno, f"{ast.unparse(node.args[0])}.{name}"))
            continue
        else:
            continue
        found.extend((node.lineno, ast.unparse(t)) for t in targets if isinstance(t, ast.Attribute))
    return sorted(found)


def _swaps_a_live_collaborator(target: str) -> bool:
    """`bot.runtime.db = …`, `harness.runtime.freezes._ticker = …`, `service._poster = …`: a test
    reaching into the runtime or into another object's private state (its own `self._x` is fine)."""
    return "runtime." in target or (not target.startswith("self.") and "._" in target)


def test_tests_build_the_runtime_with_their_fakes_instead_of_swapping_its_parts() -> None:
    """Collaborators are constructor arguments or `Overrides` (bot/runtime.py); a test that swaps
    one on a running service tests wiring that production never has."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line} assigns {target}"
        for folder in ("tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, target in _assigned_attributes(path.read_text())
        if _swaps_a_live_collaborator(target)
    ]
    assert offenders == []


def test_the_swap_rule_sees_assignments_and_setattr() -> None:
    source = (
        "bot.runtime.db = nowhere\n"
        "bot.runtime.freezes._ticker = counted\n"
        "check._poster = poster\n"
        "monkeypatch.setattr(bot.runtime.freezes, 'tick', fake)\n"
        "self._seen = []\n"
        "fake.answer_with = answer\n"
    )
    assert [_swaps_a_live_collaborator(target) for _, target in _assigned_attributes(source)] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
