"""Schema migrations: ordered SQL files, applied once each under an advisory lock.

Files are ``NNNN_name.sql``. A version may have two variants, one whose first line
is ``-- @path: timescale`` and one with ``-- @path: plain``; which runs is decided
once per database and recorded in ``schema_migrations``, so plain PostgreSQL never
sees a Timescale statement and a database never switches path.

The Timescale path is chosen only when the extension can really be created here:
:func:`probe_timescale` runs ``CREATE EXTENSION IF NOT EXISTS timescaledb`` in a
transaction that is rolled back, on a throwaway connection (an extension that is
installed but not in ``shared_preload_libraries`` fails with a FATAL error that ends
the session, so the probe must not share the migrator's connection), and checks that
the library is preloaded, because without it the background workers that run the
refresh, compression and retention policies never start, and that the server runs the
Community Edition: the Apache 2 Edition (``timescaledb.license = 'apache'``, what some
distribution packages build) has no continuous aggregates, compression, retention policies
or jobs, so the Timescale path would stop half applied at its first continuous aggregate.
Otherwise the plain path is taken and the reason is logged and returned;
``timescale="require"`` turns that reason into an error instead.

Timescale migrations run statement by statement outside a transaction block (some
Timescale statements refuse one), so a failure can leave a version half applied;
every statement there is written to be re-runnable (``IF NOT EXISTS``,
``if_not_exists => true``, guarded ``DO`` blocks), and re-running ``migrate`` after
fixing the cause completes it. The error that stopped a migration is the one raised:
releasing the advisory lock is skipped on a dead connection (the server releases a
session lock with its session) and a failure to release it is only logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bkcommon.errors import DatabaseError, MigrationError

logger = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
MIGRATION_LOCK_ID = 0x6B6B_0001  # advisory lock: one migrator at a time

TimescaleMode = Literal["auto", "require", "off"]
"""``auto``: Timescale where usable, else plain with a logged reason; ``require``: fail
with the reason where it is not usable; ``off``: plain PostgreSQL."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file and the path (plain / timescale / both) it belongs to.

    ``atomic`` migrations run in one transaction with their ``schema_migrations`` row;
    the others (the Timescale path) statement by statement, each statement re-runnable.
    """

    version: int
    name: str
    path: str  # "both", "plain" or "timescale"
    sql: str
    atomic: bool = True

    @property
    def label(self) -> str:
        """``NNNN_name`` as in the file name."""
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class TimescaleProbe:
    """Whether TimescaleDB can be used in a database, and why (or why not) in words."""

    usable: bool
    reason: str


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What ``migrate`` did: the path it took, why, and the versions it applied."""

    timescale: bool
    applied: list[str]
    current: int
    reason: str = ""


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
        out.append(Migration(int(m.group(1)), m.group(2), path, text, path != "timescale"))
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
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return False  # another migrator created it meanwhile; the advisory lock follows
    logger.info("created database %s", dbname)
    return True


def error_text(exc: BaseException) -> str:
    """The server's message of ``exc`` on one line, with its hint's first line if any."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    diag = getattr(exc, "diag", None)
    hint = getattr(diag, "message_hint", None) if diag is not None else None
    if hint:
        first = hint.strip().splitlines()[0].strip()
        if first and first not in text:
            text += f" (hint: {first})"
    return text


def probe_timescale(url: str) -> TimescaleProbe:
    """Find out whether ``CREATE EXTENSION timescaledb`` works in this database.

    The probe creates the extension in a transaction it rolls back, on its own
    connection, so it changes nothing and a FATAL answer ends only that session. What
    decides is whether the server lets the extension be created by this user, not
    whether its files happen to be installed (``pg_available_extensions``).
    """
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'"
            ).fetchone()
            preload = None if row is None else str(row[0])
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            ver = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
            # pg_settings, not current_setting(): a setting this role may not read is
            # left out there instead of raising (unknown is taken as usable)
            lic = conn.execute(
                "SELECT setting FROM pg_settings WHERE name = 'timescaledb.license'"
            ).fetchone()
            conn.rollback()
    except psycopg.Error as exc:
        return TimescaleProbe(False, f"CREATE EXTENSION timescaledb failed: {error_text(exc)}")
    return judge_timescale(
        str(ver[0]) if ver else "?", preload, None if lic is None else str(lic[0])
    )


def judge_timescale(version: str, preload: str | None, edition: str | None) -> TimescaleProbe:
    """Whether an extension that can be created is usable for the Timescale path.

    ``preload`` is ``shared_preload_libraries`` and ``edition`` ``timescaledb.license``
    (None where unknown). The Apache 2 Edition has no continuous aggregates, compression,
    retention policies or jobs (TimescaleDB's edition comparison), all of which the
    Timescale migrations create.
    """
    if preload is not None and "timescaledb" not in _preload_names(preload):
        return TimescaleProbe(
            False,
            f"timescaledb {version} can be created but is not in shared_preload_libraries "
            f"({preload or 'empty'}): its background workers (refresh, compression, "
            "retention policies) would never run",
        )
    if edition is not None and edition.strip().lower() == "apache":
        return TimescaleProbe(
            False,
            f"timescaledb {version} is the Apache 2 Edition (timescaledb.license = apache): "
            "it has no continuous aggregates, compression, retention policies or jobs, "
            "which the TimescaleDB path uses; install the Community Edition "
            "(timescaledb.license = timescale)",
        )
    return TimescaleProbe(
        True, f"timescaledb {version} can be created here{_version_note(version)}"
    )


SAFE_TIMESCALE = (2, 18, 1)
"""Oldest TimescaleDB whose ``INSERT … ON CONFLICT DO NOTHING`` into compressed chunks keeps
going after the first conflict (timescale/timescaledb#7672, fixed by #7673): before it, a
redelivered late reading could make the rows after it in the same batch vanish."""


def _version_note(version: str) -> str:
    try:
        parts = tuple(int(p) for p in version.split("-", maxsplit=1)[0].split(".")[:3])
    except ValueError:
        return ""
    if parts >= SAFE_TIMESCALE:
        return ""
    return (
        f"; warning: versions before {'.'.join(map(str, SAFE_TIMESCALE))} can skip the rows "
        "after a duplicate in one INSERT into compressed chunks (late readings older than "
        "the 7-day compression horizon): upgrade the extension"
    )


def _preload_names(setting: str) -> set[str]:
    return {p.strip().strip('"').rsplit("/", 1)[-1] for p in setting.split(",") if p.strip()}


def migrate(
    url: str,
    *,
    create: bool = True,
    force_plain: bool = False,
    timescale: TimescaleMode = "auto",
    migrations: Sequence[Migration] | None = None,
) -> MigrateResult:
    """Apply every pending migration; idempotent, safe to run from several processes.

    ``force_plain`` is the same as ``timescale="off"``. ``migrations`` replaces the
    shipped files (tests use it to apply a deliberately failing migration).
    """
    mode: TimescaleMode = "off" if force_plain else timescale
    if create:
        ensure_database(url)
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    todo = list(migrations) if migrations is not None else load_migrations()
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            return _migrate_locked(conn, url, mode, todo)
        finally:
            _unlock(conn)


def _migrate_locked(
    conn: psycopg.Connection[Any], url: str, mode: TimescaleMode, todo: list[Migration]
) -> MigrateResult:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               path       text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    rows = conn.execute("SELECT version, path FROM schema_migrations").fetchall()
    done = {int(v): str(p) for v, p in rows}
    use_ts, reason = _choose_path(url, mode, {p for p in done.values()})
    chosen = "timescale" if use_ts else "plain"
    applied: list[str] = []
    for mig in todo:
        if mig.path not in ("both", chosen) or mig.version in done:
            continue
        logger.info("applying migration %s (%s)", mig.label, mig.path)
        _apply(conn, mig)
        applied.append(mig.label)
        done[mig.version] = mig.path
    current = max(done) if done else 0
    return MigrateResult(timescale=use_ts, applied=applied, current=current, reason=reason)


def _choose_path(url: str, mode: TimescaleMode, recorded: set[str]) -> tuple[bool, str]:
    """The schema path of this database: the recorded one, else what the probe allows."""
    if "timescale" in recorded or "plain" in recorded:
        use_ts = "timescale" in recorded
        if mode == "require" and not use_ts:
            raise MigrationError(
                "TimescaleDB was required, but this database was migrated on the plain "
                "path; a database never changes path (migrate a new database instead)"
            )
        if mode == "off" and use_ts:
            raise MigrationError(
                "the plain path was requested, but this database was migrated on the "
                "TimescaleDB path; a database never changes path"
            )
        return use_ts, "path recorded by earlier migrations of this database"
    if mode == "off":
        return False, "plain PostgreSQL requested"
    probe = probe_timescale(url)
    if probe.usable:
        log = logger.warning if "warning:" in probe.reason else logger.info
        log("TimescaleDB path: %s", probe.reason)
        return True, probe.reason
    if mode == "require":
        raise MigrationError(f"TimescaleDB was required but is not usable: {probe.reason}")
    logger.warning("TimescaleDB not usable, taking the plain PostgreSQL path: %s", probe.reason)
    return False, f"TimescaleDB not usable: {probe.reason}"


def _apply(conn: psycopg.Connection[Any], mig: Migration) -> None:
    """Run one migration and record it; raise MigrationError naming what failed."""
    record = "INSERT INTO schema_migrations (version, name, path) VALUES (%s, %s, %s)"
    params = (mig.version, mig.name, mig.path)
    if mig.atomic:
        try:
            with conn.transaction():
                conn.execute(mig.sql.encode())
                conn.execute(record, params)
        except psycopg.Error as exc:
            raise MigrationError(
                f"migration {mig.label} failed and was rolled back: {error_text(exc)}"
            ) from exc
        return
    stmts = split_sql(mig.sql)
    for i, stmt in enumerate(stmts, 1):
        try:
            conn.execute(stmt.encode())
        except psycopg.Error as exc:
            lost = " (the connection to the server was lost)" if conn.broken else ""
            raise MigrationError(
                f"migration {mig.label} failed at statement {i} of {len(stmts)} "
                f"({_head(stmt)}){lost}: {error_text(exc)}; the statements before it stay "
                "applied and all are re-runnable: fix the cause and run the migration again"
            ) from exc
    try:
        conn.execute(record, params)
    except psycopg.Error as exc:
        raise MigrationError(
            f"migration {mig.label} could not be recorded: {error_text(exc)}"
        ) from exc


def _head(stmt: str, width: int = 80) -> str:
    one = " ".join(stmt.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _unlock(conn: psycopg.Connection[Any]) -> None:
    """Release the migration lock without ever hiding the error that is on its way out."""
    if conn.closed or conn.broken:
        return  # the session is gone, and its advisory lock with it
    try:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    except psycopg.Error as exc:
        logger.warning("could not release the migration lock (released with the session): %s", exc)


_TOKEN_RE = re.compile(
    r"""
      (?P<line>--[^\n]*)
    | (?P<block>/\*.*?\*/)
    | (?P<squote>'(?:[^']|'')*')
    | (?P<dquote>"(?:[^"]|"")*")
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$)
    | (?P<semi>;)
    """,
    re.VERBOSE | re.DOTALL,
)


def split_sql(text: str) -> list[str]:
    """Split SQL into statements at top-level semicolons.

    Quoted strings, quoted identifiers, comments and dollar-quoted bodies (``DO $$ … $$``)
    are kept whole; comment-only pieces are dropped.
    """
    out: list[str] = []
    start = 0
    pos = 0
    meaningful = False
    while True:
        m = _TOKEN_RE.search(text, pos)
        if m is None:
            break
        if text[pos : m.start()].strip():
            meaningful = True
        kind = m.lastgroup if m.lastgroup != "tag" else "dollar"
        if m.group("dollar") is not None:
            close = text.find(m.group("dollar"), m.end())
            if close < 0:
                raise MigrationError(f"unterminated dollar quote {m.group('dollar')}")
            pos = close + len(m.group("dollar"))
            meaningful = True
            continue
        if kind == "semi":
            if meaningful:
                out.append(text[start : m.start()].strip())
            start = pos = m.end()
            meaningful = False
            continue
        if kind in ("squote", "dquote"):
            meaningful = True
        pos = m.end()
    if meaningful or text[pos:].strip():
        tail = text[start:].strip()
        if _strip_comments(tail):
            out.append(tail)
    return out


def _strip_comments(stmt: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.DOTALL).strip()
