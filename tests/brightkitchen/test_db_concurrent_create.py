"""Replicas that run `db migrate` at once against a database that does not exist yet."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from brightkitchen.db import migrate


def test_concurrent_migrators_creating_the_database_all_succeed(pg_server: str) -> None:
    name = f"bk_race_{uuid.uuid4().hex[:10]}"
    url = f"{pg_server.rstrip('/')}/{name}"
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: migrate(url, timescale="off"), range(4)))
        assert {r.current for r in results} == {max(r.current for r in results)}
    finally:
        with psycopg.connect(f"{pg_server.rstrip('/')}/postgres", autocommit=True) as c:
            c.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
