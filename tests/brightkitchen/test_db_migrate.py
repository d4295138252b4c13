"""Migrations against the real PostgreSQL: idempotent, recorded, plain path where no Timescale."""

from __future__ import annotations

import os
import re
import uuid

import psycopg
import pytest

from bkcommon.errors import MigrationError
from brightkitchen.db import (
    MIGRATION_LOCK_ID,
    Migration,
    load_migrations,
    migrate,
    probe_timescale,
    split_sql,
)
from tests.conftest import run_cli
from tests.support.databases import PathDb, drop
from tests.support.services import server_url


def test_migrate_is_idempotent_and_records_versions(db_url: str) -> None:
    again = migrate(db_url)
    assert again.applied == []
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT version, path FROM schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == sorted({m.version for m in load_migrations()})
    assert again.current == rows[-1][0]


def test_plain_path_has_rollup_views(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        ts = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name='timescaledb'"
        ).fetchone()
        cols = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name='readings_5m' "
            "ORDER BY ordinal_position"
        ).fetchall()
    assert [c[0] for c in cols] == ["sensor_id", "bucket", "temp_min", "temp_avg", "temp_max", "n"]
    if ts is None:
        with psycopg.connect(db_url) as conn:
            idx = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname='sensor_readings_ts_brin'"
            ).fetchone()
        assert idx is not None
        assert "brin" in idx[0]


def test_ticket_events_are_append_only(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO regions VALUES ('r','R',NULL)")
        conn.execute("INSERT INTO sites (id, region_id, name) VALUES ('s','r','S')")
        tid = conn.execute(
            "INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, title, "
            "opened_at, due_at, last_occurrence_at) VALUES ('T1','s','manual','x','y',2,'t',"
            "now(), now(), now()) RETURNING id"
        ).fetchone()
        assert tid is not None
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, actor, kind) VALUES (%s,'a','opened')", (tid[0],)
        )
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM ticket_events")


def test_cli_migrate_prints_path(cli_env: dict[str, str]) -> None:
    out = run_cli("db", "migrate", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "schema path: plain PostgreSQL" in out.stdout or "TimescaleDB" in out.stdout
    assert "nothing to apply" in out.stdout


# --- path detection: the CREATE EXTENSION probe decides -------------------------------


def test_auto_path_follows_the_create_extension_probe(pg_server: str) -> None:
    """A new database takes the path the probe allows, and says why."""
    url = f"{pg_server}/bk_t_{uuid.uuid4().hex[:12]}"
    try:
        probe = probe_timescale(f"{pg_server}/postgres")
        result = migrate(url)
        assert result.timescale is probe.usable
        assert probe.reason in result.reason
        with psycopg.connect(url) as conn:
            paths = conn.execute(
                "SELECT DISTINCT path FROM schema_migrations WHERE path <> 'both'"
            ).fetchall()
        assert paths == [("timescale" if probe.usable else "plain",)]
    finally:
        drop(pg_server, url.rsplit("/", 1)[1])


def test_required_timescale_fails_with_the_servers_reason(pg_server: str) -> None:
    """Where the extension cannot be created, --timescale refuses and says why, applying
    nothing; without it the plain path is taken and the CLI prints the reason."""
    probe = probe_timescale(f"{pg_server}/postgres")
    if probe.usable:
        pytest.skip(f"the test server can create TimescaleDB ({probe.reason})")
    assert "timescaledb" in probe.reason
    name = f"bk_t_{uuid.uuid4().hex[:12]}"
    url = f"{pg_server}/{name}"
    try:
        with pytest.raises(MigrationError, match="TimescaleDB was required") as err:
            migrate(url, timescale="require")
        assert probe.reason in str(err.value)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)
        env = dict(os.environ, BK_DATABASE_URL=url)
        refused = run_cli("db", "migrate", "--timescale", env=env)
        assert refused.returncode == 1
        assert "TimescaleDB was required but is not usable" in refused.stderr + refused.stdout
        out = run_cli("db", "migrate", env=env)
        assert out.returncode == 0, out.stderr
        assert "schema path: plain PostgreSQL" in out.stdout
        assert "why: TimescaleDB not usable: CREATE EXTENSION timescaledb failed" in out.stdout
    finally:
        drop(pg_server, name)


# --- the real error surfaces; a half-applied migration is completed by a re-run --------


def _lock_is_free(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_ID,)).fetchone()
        conn.execute("SELECT pg_advisory_unlock_all()")
    return row == (True,)


def test_failing_migration_raises_its_own_error_and_rolls_back(db_url: str) -> None:
    bad = Migration(9001, "divides_by_zero", "both", "CREATE TABLE bk_never (x int); SELECT 1/0")
    with pytest.raises(MigrationError) as err:
        migrate(db_url, migrations=[*load_migrations(), bad])
    assert "9001_divides_by_zero failed and was rolled back: division by zero" in str(err.value)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('bk_never')").fetchone() == (None,)
        assert (
            conn.execute("SELECT 1 FROM schema_migrations WHERE version = 9001").fetchone() is None
        )
    assert _lock_is_free(db_url)


@pytest.mark.parametrize("atomic", [True, False])
def test_a_killed_migrator_connection_reports_the_kill_not_the_unlock(
    db_url: str, atomic: bool
) -> None:
    """The server ends the migrator's session mid-migration (as a FATAL error does): the
    error raised is that one, not a second one from unlocking on the dead connection."""
    dies = Migration(
        9002, "session_dies", "both", "SELECT pg_terminate_backend(pg_backend_pid())", atomic
    )
    with pytest.raises(MigrationError) as err:
        migrate(db_url, migrations=[*load_migrations(), dies])
    text = str(err.value)
    assert "9002_session_dies" in text
    assert "terminating connection due to administrator command" in text
    assert err.value.__cause__ is not None
    assert not isinstance(err.value.__cause__, psycopg.errors.ActiveSqlTransaction)
    assert _lock_is_free(db_url)  # the server released it with the session
    assert migrate(db_url).applied == []


def test_half_applied_statement_by_statement_migration_completes_on_rerun(db_url: str) -> None:
    """A non-atomic (Timescale-style) migration that stops at its third statement keeps
    the first two; once the cause is fixed, running it again re-runs them harmlessly and
    completes."""
    text = """
        CREATE TABLE IF NOT EXISTS bk_half (id int PRIMARY KEY, parent int);
        CREATE INDEX IF NOT EXISTS bk_half_parent_idx ON bk_half (parent);
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'bk_half_parent_fk') THEN
                ALTER TABLE bk_half ADD CONSTRAINT bk_half_parent_fk
                    FOREIGN KEY (parent) REFERENCES bk_parent (id);
            END IF;
        END $$;
    """
    half = Migration(9003, "half", "both", text, atomic=False)
    with pytest.raises(MigrationError) as err:
        migrate(db_url, migrations=[*load_migrations(), half])
    assert "9003_half failed at statement 3 of 3" in str(err.value)
    assert 'relation "bk_parent" does not exist' in str(err.value)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('bk_half')").fetchone() == ("bk_half",)
        assert (
            conn.execute("SELECT 1 FROM schema_migrations WHERE version = 9003").fetchone() is None
        )
        conn.execute("CREATE TABLE bk_parent (id int PRIMARY KEY)")  # the cause, fixed
    assert migrate(db_url, migrations=[*load_migrations(), half]).applied == ["9003_half"]
    with psycopg.connect(db_url) as conn:
        fk = conn.execute("SELECT 1 FROM pg_constraint WHERE conname = 'bk_half_parent_fk'")
        assert fk.fetchone() == (1,)


def test_timescale_migrations_rerun_on_a_complete_database(path_db: PathDb) -> None:
    """Every Timescale statement is re-runnable: with its records removed, the whole
    Timescale path runs again over the finished schema (a half-applied run is a subset).
    The plain path's migrations are atomic, never half applied: checked there is that it
    records no Timescale version."""
    with psycopg.connect(path_db.url, autocommit=True) as conn:
        removed = conn.execute(
            "DELETE FROM schema_migrations WHERE path = 'timescale' RETURNING version"
        ).fetchall()
    if path_db.path == "plain":
        assert removed == []
        return
    timescale = [m for m in load_migrations() if m.path == "timescale"]
    assert sorted(v for (v,) in removed) == [m.version for m in timescale]
    again = migrate(path_db.url, timescale="require")
    assert again.applied == [m.label for m in timescale]
    with psycopg.connect(path_db.url) as conn:
        jobs = conn.execute(
            "SELECT proc_name, count(*) FROM timescaledb_information.jobs "
            "WHERE (proc_name LIKE 'policy_%' AND hypertable_name IS NOT NULL) "
            "   OR proc_name = 'bk_precreate_reading_chunks' "
            "GROUP BY proc_name ORDER BY proc_name"
        ).fetchall()
    assert jobs == [  # compression and retention of sensor_readings and cabinet_power
        ("bk_precreate_reading_chunks", 1),
        ("policy_compression", 2),
        ("policy_refresh_continuous_aggregate", 2),
        ("policy_retention", 2),
    ]


_RERUNNABLE = re.compile(
    r"""^(CREATE\ EXTENSION\ IF\ NOT\ EXISTS
        |CREATE\ MATERIALIZED\ VIEW\ IF\ NOT\ EXISTS
        |CREATE\ OR\ REPLACE\ (PROCEDURE|FUNCTION|VIEW)
        |ALTER\ MATERIALIZED\ VIEW\ \w+\ SET
        |SELECT\ remove_\w+_policy\('\w+',\ true\)
        |SELECT\ (create_hypertable|add_\w+_policy)\(.*if_not_exists\ =>\ true
        |DO\ \$\$.*(IF\ NOT\ EXISTS|if_not_exists\ =>\ true)
        |DO\ \$\$\ BEGIN\ EXECUTE\ format\(\ 'ALTER\ DATABASE\ %I\ SET
        |CALL\ bk_precreate_reading_chunks)""",
    re.VERBOSE | re.DOTALL,
)


def test_every_timescale_statement_is_written_to_be_rerunnable() -> None:
    """Checked here without TimescaleDB; the test above runs them where it exists."""
    stmts = [
        (m.label, " ".join(_code(s).split()))
        for m in load_migrations()
        if m.path == "timescale"
        for s in split_sql(m.sql)
    ]
    assert len(stmts) >= 12
    bad = [(label, s[:80]) for label, s in stmts if not _RERUNNABLE.match(s)]
    assert bad == []
    assert all(not m.atomic for m in load_migrations() if m.path == "timescale")


def _code(stmt: str) -> str:
    return re.sub(r"--[^\n]*", "", stmt).strip()


def test_split_sql_keeps_quotes_comments_and_dollar_bodies_whole() -> None:
    text = (
        "-- head; comment\nCREATE TABLE a (x text DEFAULT ';');\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "DO $b$ BEGIN RAISE NOTICE 'a;b $$'; END $b$ ;\n"
        '/* c; */ SELECT "we;ird" FROM t\n-- tail only\n'
    )
    assert split_sql(text) == [
        "-- head; comment\nCREATE TABLE a (x text DEFAULT ';')",
        "DO $$ BEGIN PERFORM 1; END $$",
        "DO $b$ BEGIN RAISE NOTICE 'a;b $$'; END $b$",
        '/* c; */ SELECT "we;ird" FROM t\n-- tail only',
    ]
    assert split_sql("-- nothing here;\n") == []


# --- the test databases ---------------------------------------------------------------


def test_template_is_closed_to_connections_and_clones_are_open(
    pg_server: str, template_db: str, db_url: str
) -> None:
    """No background worker (TimescaleDB's scheduler) can sit on the template and make
    CREATE DATABASE … TEMPLATE fail; the clones accept connections as usual."""
    with psycopg.connect(f"{pg_server}/postgres") as conn:
        tpl = conn.execute(
            "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s",
            (template_db,),
        ).fetchone()
        on_template = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (template_db,)
        ).fetchone()
        clone_row = conn.execute(
            "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s",
            (db_url.rsplit("/", 1)[1],),
        ).fetchone()
    assert tpl == (True, False)
    assert on_template == (0,)
    assert clone_row == (False, True)


def test_server_url_drops_the_database_and_refuses_options() -> None:
    assert server_url("postgresql://u:p@tsdb:5433/anything") == "postgresql://u:p@tsdb:5433"
    assert server_url("postgres://u@h") == "postgres://u@h"
    with pytest.raises(ValueError, match="PGSSLMODE"):
        server_url("postgresql://u@h/db?sslmode=require")
    with pytest.raises(ValueError, match="postgresql://"):
        server_url("mysql://u@h")
