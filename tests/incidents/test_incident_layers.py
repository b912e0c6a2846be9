"""The incident services leave SQL to `bot.db.incidents`: they never import the ORM."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).parent.parent.parent / "bot"
INCIDENT_SERVICES = [*sorted((BOT / "services" / "incidents").glob("*.py")), BOT / "services" / "incident_freezes.py"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_incident_services_never_import_sqlalchemy_or_sqlmodel() -> None:
    assert INCIDENT_SERVICES
    offenders = [f"{path.relative_to(BOT.parent)} imports {name}" for path in INCIDENT_SERVICES
                 for name in _imports(path) if name.split(".")[0] in {"sqlalchemy", "sqlmodel"}]
    assert offenders == []
