"""Database URLs as platforms hand them out, turned into SQLAlchemy URLs with a driver.

Heroku gives `postgres://…`, most others `postgresql://…`; users should never have to name a
driver. We use psycopg 3 for PostgreSQL (it is both sync, for alembic, and async, for the bot)
and aiosqlite for the embedded SQLite default.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError


class UnsupportedDatabaseURL(ValueError):
    pass


_POSTGRES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"}
_SQLITE = {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}
_MYSQL = {"mysql", "mariadb", "mysql+pymysql", "mysql+aiomysql", "mariadb+pymysql"}


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise UnsupportedDatabaseURL(f"not a database URL: {_redact(url)!r}") from exc


def _redact(url: str) -> str:
    """Password hidden, and the query dropped (drivers accept `?password=…` and key files there)."""
    try:
        return make_url(url).set(query={}).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.rpartition("@")[2].split("?")[0]


def async_url(url: str) -> URL:
    """The URL with an asyncio driver (psycopg async, aiosqlite, aiomysql)."""
    parsed = _parse(url)
    if parsed.drivername in _POSTGRES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE:
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in _MYSQL:
        return parsed.set(drivername="mysql+aiomysql")
    raise UnsupportedDatabaseURL(f"unsupported database scheme {parsed.drivername!r}: use postgres:// or sqlite:///")


def sync_url(url: str) -> URL:
    """The URL with a blocking driver, for alembic migrations."""
    parsed = _parse(url)
    if parsed.drivername in _POSTGRES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE:
        return parsed.set(drivername="sqlite")
    raise UnsupportedDatabaseURL(f"unsupported database scheme {parsed.drivername!r}: use postgres:// or sqlite:///")


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return _redact(url)
