"""The freeze services say what they want from the database; the SQL lives in bot/db/freeze.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = sorted((Path(__file__).parent.parent.parent / "bot" / "services").glob("freeze*.py"))


@pytest.mark.parametrize("module", SERVICES, ids=lambda p: p.name)
def test_freeze_services_import_no_sql_library(module: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {m for m in imported if m.split(".")[0] in ("sqlalchemy", "sqlmodel")}, module.name
