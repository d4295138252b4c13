"""Schema migrations: ordered SQL files, applied once each under an advisory lock.

Files are ``NNNN_name.sql``. A version may have two variants, one whose first line
is ``-- @path: timescale`` and one with ``-- @path: plain``; which runs is decided
by whether the ``timescaledb`` extension is available, so plain PostgreSQL never
sees a Timescale statement. The chosen path is recorded and printed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bkcommon.errors import DatabaseError, MigrationError

logger = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x6B6B_0001  # advisory lock: one migrator at a time


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file and the path (plain / timescale / both) it belongs to."""

    version: int
    name: str
    path: str  # "both", "plain" or "timescale"
    sql: str


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What ``migrate`` did: the path it took and the versions it applied."""

    timescale: bool
    applied: list[str]
    current: int


def load_migrations() -> list[Migration]:
    """Read the migration files shipped in this package, sorted by version."""
    out = []
    for entry in resources.files("brightkitchen.migrations").iterdir():
        m = _FILE_RE.match(entry.name)
        if not m:
            continue
        text = entry.read_text(encoding="utf-8")
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        path = "both"
        if first.startswith("-- @path:"):
            path = first.split(":", 1)[1].strip()
            if path not in ("plain", "timescale"):
                raise MigrationError(f"{entry.name}: unknown @path {path!r}")
        out.append(Migration(int(m.group(1)), m.group(2), path, text))
    return sorted(out, key=lambda x: (x.version, x.path))


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; return True if created."""
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    if not dbname:
        raise DatabaseError(f"database URL names no database: {parts.scheme}://{parts.hostname}")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    try:
        with psycopg.connect(url, connect_timeout=5):
            return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    logger.info("created database %s", dbname)
    return True


def timescale_available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Return True when the timescaledb extension can be (or is) installed."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def migrate(url: str, *, create: bool = True, force_plain: bool = False) -> MigrateResult:
    """Apply every pending migration; idempotent, safe to run from several processes."""
    if create:
        ensure_database(url)
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       path       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            rows = conn.execute("SELECT version, path FROM schema_migrations").fetchall()
            done = {int(v): str(p) for v, p in rows}
            recorded = {p for p in done.values() if p in ("plain", "timescale")}
            if recorded:
                use_ts = "timescale" in recorded
            else:
                use_ts = not force_plain and timescale_available(conn)
            chosen = "timescale" if use_ts else "plain"
            applied: list[str] = []
            for mig in load_migrations():
                if mig.path not in ("both", chosen) or mig.version in done:
                    continue
                logger.info("applying migration %04d_%s (%s)", mig.version, mig.name, mig.path)
                try:
                    if mig.path == "timescale":
                        # Continuous aggregates and policies refuse some transaction blocks:
                        # run statement by statement in autocommit mode.
                        for stmt in _split_sql(mig.sql):
                            conn.execute(stmt.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, path) VALUES (%s,%s,%s)",
                            (mig.version, mig.name, mig.path),
                        )
                    else:
                        with conn.transaction():
                            conn.execute(mig.sql.encode())
                            conn.execute(
                                "INSERT INTO schema_migrations (version, name, path) "
                                "VALUES (%s,%s,%s)",
                                (mig.version, mig.name, mig.path),
                            )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} failed: {exc}"
                    ) from exc
                applied.append(f"{mig.version:04d}_{mig.name}")
                done[mig.version] = mig.path
            current = max(done) if done else 0
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return MigrateResult(timescale=use_ts, applied=applied, current=current)


def _split_sql(text: str) -> list[str]:
    """Split a migration without dollar-quoted bodies into statements (Timescale path only)."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
