"""The fault-injecting TCP proxy itself, against the real PostgreSQL: each mode does what it says."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.support.databases import postgres_base_url, require_service
from tests.support.tcp_proxy import faulty_proxy


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1).split("+psycopg")[0]


async def _connect(url: str, connect_timeout: int = 2) -> psycopg.AsyncConnection[object]:
    return await psycopg.AsyncConnection.connect(_libpq(url), connect_timeout=connect_timeout, autocommit=True)


async def _select_one(conn: psycopg.AsyncConnection[object]) -> object:
    cursor = await conn.execute("SELECT 1")
    return await cursor.fetchone()


@pytest.fixture
async def reachable_postgres() -> str:
    url = postgres_base_url()
    try:
        conn = await _connect(url)
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL", exc)
        raise
    await conn.close()
    return url


async def test_pass_forwards_queries(reachable_postgres: str) -> None:
    async with faulty_proxy(reachable_postgres) as proxy:
        conn = await _connect(proxy.url_for(reachable_postgres))
        assert await _select_one(conn) == (1,)
        await conn.close()


async def test_refuse_fails_new_connections_at_once_and_resets_old_ones(reachable_postgres: str) -> None:
    async with faulty_proxy(reachable_postgres) as proxy:
        old = await _connect(proxy.url_for(reachable_postgres))
        proxy.mode = "refuse"
        with pytest.raises(psycopg.OperationalError):
            await _connect(proxy.url_for(reachable_postgres))
        with pytest.raises(psycopg.OperationalError):
            await _select_one(old)


async def test_blackhole_never_answers_a_new_connection(reachable_postgres: str) -> None:
    async with faulty_proxy(reachable_postgres) as proxy:
        proxy.mode = "blackhole"
        with pytest.raises(psycopg.OperationalError):
            await _connect(proxy.url_for(reachable_postgres), connect_timeout=1)


async def test_strand_silences_old_connections_but_lets_new_ones_through(reachable_postgres: str) -> None:
    async with faulty_proxy(reachable_postgres) as proxy:
        old = await _connect(proxy.url_for(reachable_postgres))
        proxy.mode = "strand"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_select_one(old), timeout=0.5)
        fresh = await _connect(proxy.url_for(reachable_postgres))
        assert await _select_one(fresh) == (1,)
        await fresh.close()
