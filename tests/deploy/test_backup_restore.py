"""Backups are restorable: backup.sh then restore.sh, as docs/operations.md tells an operator."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from tests.deploy.stack import COMPOSE
from tests.deploy.test_district import SITE


def _libpq_env(url: str) -> dict[str, str]:
    """PGHOST/PGPORT/PGUSER/PGDATABASE of a URL, as the backup service gets them."""
    u = urlsplit(url)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PGHOST": u.hostname or "127.0.0.1",
        "PGPORT": str(u.port or 5432),
        "PGUSER": u.username or "postgres",
        "PGDATABASE": u.path.lstrip("/"),
    }
    if u.password:
        env["PGPASSWORD"] = u.password
    return env


def _row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
        ]
        out = {}
        for t in tables:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
            fetched = row.fetchone()
            assert fetched is not None
            out[t] = int(fetched[0])
    return out


def _seed(url: str) -> None:
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        sync_registry(conn, parse_site_file(SITE))
        with conn.cursor().copy(
            "COPY sensor_readings (sensor_id, ts, seq, temp_c, received_at) FROM STDIN"
        ) as copy:
            for i in range(500):
                at = t0 + timedelta(minutes=i)
                copy.write_row(("fridge-1", at, i, 4.0 + (i % 7) / 10, at))


def test_backup_then_documented_restore_gives_equal_row_counts(db_url: str, tmp_path: Path) -> None:
    _seed(db_url)
    before = _row_counts(db_url)
    assert before["sensor_readings"] == 500
    env = _libpq_env(db_url)
    backups = tmp_path / "backups"
    for _ in range(3):  # three runs with BACKUP_KEEP=2: the oldest one is pruned
        done = subprocess.run(
            ["sh", str(COMPOSE / "backup/backup.sh")],
            env={**env, "BACKUP_DIR": str(backups), "BACKUP_KEEP": "2"},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    dumps = sorted(backups.glob("*.dump"))
    assert 1 <= len(dumps) <= 2
    assert not list(backups.glob("*.partial"))

    target = f"bk_restore_{uuid.uuid4().hex[:10]}"
    restored_url = db_url.rsplit("/", 1)[0] + f"/{target}"
    try:
        done = subprocess.run(
            ["sh", str(COMPOSE / "backup/restore.sh"), str(dumps[-1]), target],
            env={k: v for k, v in env.items() if k != "PGDATABASE"},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert _row_counts(restored_url) == before
        # the restore refuses to overwrite: the target must be new
        again = subprocess.run(
            ["sh", str(COMPOSE / "backup/restore.sh"), str(dumps[-1]), target],
            env={k: v for k, v in env.items() if k != "PGDATABASE"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert again.returncode != 0
        assert "already exists" in again.stderr
    finally:
        with psycopg.connect(db_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            c.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target))
            )


@pytest.mark.parametrize("args", [[], ["/nonexistent.dump", "x"]])
def test_restore_refuses_missing_arguments_or_file(args: list[str]) -> None:
    done = subprocess.run(
        ["sh", str(COMPOSE / "backup/restore.sh"), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip()


def test_loop_failed_dump_never_replaces_a_good_one(db_url: str, tmp_path: Path) -> None:
    """The compose service runs `backup.sh --loop`: a dump cut short (disk full, here a file
    size limit) must not be published as *.dump nor push a good dump out of BACKUP_KEEP."""
    _seed(db_url)
    env = {**_libpq_env(db_url), "BACKUP_DIR": str(tmp_path), "BACKUP_KEEP": "1"}
    ok = subprocess.run(
        ["sh", str(COMPOSE / "backup/backup.sh")], env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    [good] = list(tmp_path.glob("*.dump"))
    good_bytes = good.read_bytes()
    loop = subprocess.run(
        ["bash", "-c", 'ulimit -f 8; sleep 1.1; timeout 10 sh "$0" --loop',
         str(COMPOSE / "backup/backup.sh")],
        env={**env, "BACKUP_INTERVAL_S": "3600"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "pg_dump failed" in loop.stderr, loop.stdout + loop.stderr
    assert [p.name for p in tmp_path.glob("*.dump")] == [good.name]
    assert good.read_bytes() == good_bytes
    assert not list(tmp_path.glob("*.partial"))


def test_dumps_are_private(db_url: str, tmp_path: Path) -> None:
    """A dump holds password hashes, notification secrets and contacts: 0600, whatever umask."""
    done = subprocess.run(
        ["sh", "-c", 'umask 022; exec sh "$0"', str(COMPOSE / "backup/backup.sh")],
        env={**_libpq_env(db_url), "BACKUP_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [dump] = list(tmp_path.glob("*.dump"))
    assert dump.stat().st_mode & 0o077 == 0


def test_restore_keeps_database_settings(db_url: str, tmp_path: Path) -> None:
    """ALTER DATABASE settings (0036 sets one on TimescaleDB) are not in the restored
    objects: restore.sh applies them to the new database too."""
    _seed(db_url)
    src = urlsplit(db_url).path.lstrip("/")
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(
            sql.SQL(
                "ALTER DATABASE {} SET timescaledb.max_tuples_decompressed_per_dml_transaction = 0"
            ).format(sql.Identifier(src))
        )
    env = _libpq_env(db_url)
    done = subprocess.run(
        ["sh", "-c", 'umask 022; exec sh "$0"', str(COMPOSE / "backup/backup.sh")],
        env={**env, "BACKUP_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [dump] = list(tmp_path.glob("*.dump"))
    target = f"bk_restore_{uuid.uuid4().hex[:10]}"
    admin = db_url.rsplit("/", 1)[0] + "/postgres"
    try:
        done = subprocess.run(
            ["sh", str(COMPOSE / "backup/restore.sh"), str(dump), target],
            env={k: v for k, v in env.items() if k != "PGDATABASE"},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        with psycopg.connect(admin) as c:
            row = c.execute(
                "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d"
                " ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0",
                (target,),
            ).fetchone()
        assert row is not None
        assert "timescaledb.max_tuples_decompressed_per_dml_transaction=0" in row[0]
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target))
            )
