"""Test databases: migrated templates kept away from background workers, and their clones.

Each test gets a database cloned (``CREATE DATABASE … TEMPLATE``) from a template
migrated once per session. Cloning fails while anyone is connected to the template, and
TimescaleDB's job scheduler connects a background worker to every database that has the
extension; so once migrated, a template is marked ``IS_TEMPLATE`` and
``ALLOW_CONNECTIONS false`` (TimescaleDB's launcher starts schedulers only for databases
that allow connections) and the sessions still on it are ended. Clones allow connections
again, so policies and jobs run there as in production. The same steps are harmless on
plain PostgreSQL.

Templates exist per schema path: the one ``migrate`` chooses for the server (the suite's
default), and the other path on demand, so the rollup, retention and compression tests
run on both paths where the server has TimescaleDB.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from brightkitchen.db import MigrateResult, migrate

SchemaPath = Literal["plain", "timescale"]


@dataclass(frozen=True, slots=True)
class PathDb:
    """A fresh test database migrated on one schema path."""

    path: SchemaPath
    url: str


class PathUnavailableError(Exception):
    """The test server cannot give a database on the asked schema path (the reason)."""


def server_label(server: str) -> str:
    """host:port of a server URL, without credentials, for messages."""
    parts = urlsplit(server)
    return f"{parts.hostname or 'local socket'}:{parts.port or 5432}"


def freeze_template(server: str, name: str) -> None:
    """Make ``name`` a template nobody (no background worker either) stays connected to."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            )
        )
        _end_sessions(conn, name)


def clone(server: str, template: str, name: str, attempts: int = 5) -> str:
    """Create database ``name`` from ``template`` and return its URL.

    A session that reached the template just before it was frozen can still be on its
    way out; such sessions are ended and the copy retried.
    """
    stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        for attempt in range(attempts):
            try:
                conn.execute(stmt)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == attempts - 1:
                    raise
                _end_sessions(conn, template)
                time.sleep(0.2 * (attempt + 1))
    return f"{server}/{name}"


def drop(server: str, name: str, template: bool = False) -> None:
    """Drop a test database (a template is unmarked first: templates cannot be dropped)."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if template:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
            )
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _end_sessions(conn: psycopg.Connection[tuple[object, ...]], dbname: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    )


@dataclass
class Templates:
    """The session's migrated templates, made on first use, dropped by ``cleanup``."""

    server: str
    prefix: str
    made: dict[str, tuple[str, MigrateResult]] = field(default_factory=dict)

    def default(self) -> tuple[str, MigrateResult]:
        """The template on the path ``migrate`` chooses for this server by itself."""
        return self._make("auto")

    def for_path(self, path: SchemaPath) -> str:
        """The template on ``path``; raise PathUnavailableError where the server lacks it."""
        name, result = self.default()
        if result.timescale == (path == "timescale"):
            return name
        if path == "plain":
            return self._make("off")[0]
        raise PathUnavailableError(
            f"TimescaleDB path not exercised: the test server {server_label(self.server)} "
            f"took the plain path ({result.reason}); point BK_TEST_DATABASE_URL at a "
            "TimescaleDB server to run it"
        )

    def _make(self, mode: Literal["auto", "off"]) -> tuple[str, MigrateResult]:
        if mode not in self.made:
            name = f"{self.prefix}_{mode}_{uuid.uuid4().hex[:6]}"
            result = migrate(f"{self.server}/{name}", timescale=mode)
            freeze_template(self.server, name)
            self.made[mode] = (name, result)
        return self.made[mode]

    def cleanup(self) -> None:
        """Drop every template made."""
        for name, _ in self.made.values():
            drop(self.server, name, template=True)
        self.made.clear()
