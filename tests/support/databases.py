"""Test databases: a fresh SQLite file, or a fresh schema on the local PostgreSQL.

PostgreSQL tests read TEST_DATABASE_URL (default: the machine's trust-auth server). On a laptop
without PostgreSQL they skip with the reason; with CI=true they fail instead, so a broken
service can never turn into a quietly green run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


def require_service(name: str, error: Exception) -> None:
    """Skip on a developer laptop; fail loudly in CI."""
    message = f"{name} is unreachable ({type(error).__name__}: {error})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must run these tests")
    pytest.skip(f"{message}; set TEST_DATABASE_URL / TEST_REDIS_URL to run these tests")


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1).split("+psycopg")[0]


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new schema, dropped afterwards."""
    base = postgres_base_url()
    try:
        admin = psycopg.connect(_libpq(base), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL", exc)
        raise
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


@contextmanager
def database_url_for(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'guardrail.db'}"
    else:
        with postgres_schema_url() as url:
            yield url
