"""Migrations against the real PostgreSQL: idempotent, recorded, plain path where no Timescale."""

from __future__ import annotations

import psycopg
import pytest

from brightkitchen.db import load_migrations, migrate
from tests.conftest import run_cli


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
