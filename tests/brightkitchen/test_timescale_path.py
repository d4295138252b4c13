"""The TimescaleDB path, checked where TimescaleDB is not installed: the statements the runner
issues on that path (the migration files split as ``brightkitchen.db`` splits them) and the
plain schema of the tables that path turns into hypertables.

What is held here (the TimescaleDB documentation pages named in brackets):

* Timescale statements live in ``@path: timescale`` files only, each with a plain twin of the
  same version, so plain PostgreSQL never sees one and both paths report the same version.
* The rollups the API and the claim bundle read are real-time continuous aggregates: since
  2.13 an aggregate is materialized-only unless told, and would then miss every bucket newer
  than its last refresh (docs: continuous-aggregates/real-time-aggregates).
* A refresh window never reaches into raw chunks that retention drops: a refresh over dropped
  raw data deletes the aggregate there (docs: data-retention-with-continuous-aggregates).
* A hypertable's only unique index is its primary key, which holds its time column: a unique
  index must include the partitioning column, and one added later cannot be created once
  chunks are compressed (docs: api/compression). No foreign key points at a hypertable
  (possible only since 2.16, and the plain path would then promise rows that retention
  drops); no user trigger sits on one (retention drops whole chunks, which fires no row
  trigger, and the chunk pre-creation job inserts and deletes a probe row).
* Compression segments by the key's leading column and orders by time, so a late or
  redelivered reading decompresses only its own sensor's batches to check its key (docs:
  compression/modify-compressed-data).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from api.queries.readings import _ROLLUP_VIEWS
from brightkitchen.db import judge_timescale, load_migrations, split_sql
from tests.support.databases import Templates, clone, drop

_TIMESCALE_ONLY = re.compile(
    r"timescale|hypertable|time_bucket|continuous|compress|_policy\b|\badd_job\b|\balter_job\b"
    r"|drop_chunks|\bchunks?\b",
    re.IGNORECASE,
)


def _code(sql: str) -> str:
    """``sql`` without its line comments, on one line."""
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


def timescale_statements() -> list[tuple[str, str]]:
    """(migration, statement) of every statement of the ``timescale`` files, in the order the
    runner issues them (one by one, outside a transaction)."""
    return [
        (m.label, _code(s))
        for m in load_migrations()
        if m.path == "timescale"
        for s in split_sql(m.sql)
    ]


def _hypertables() -> dict[str, str]:
    """Each hypertable the Timescale path creates, with its time column."""
    out = {}
    for _label, stmt in timescale_statements():
        for table, column in re.findall(r"create_hypertable\('(\w+)', '(\w+)'", stmt):
            out[table] = column
    return out


def _days(text: str) -> int:
    m = re.fullmatch(r"(\d+) days?", text)
    assert m, f"interval {text!r} is not in days"
    return int(m.group(1))


def test_the_apache_edition_takes_the_plain_path() -> None:
    """The Apache 2 Edition can be created and preloaded, but has no continuous aggregates,
    compression, retention policies or jobs: the Timescale path stopped half applied at its
    first continuous aggregate, where the plain path works. It is refused with the reason."""
    preload = "pg_stat_statements,timescaledb"
    apache = judge_timescale("2.28.3", preload, "apache")
    assert not apache.usable
    assert "Apache 2 Edition" in apache.reason
    assert "timescaledb.license = timescale" in apache.reason
    for edition in ("timescale", None):  # None: a setting this role cannot read
        probe = judge_timescale("2.28.3", preload, edition)
        assert probe.usable, probe.reason
    not_preloaded = judge_timescale("2.28.3", "pg_stat_statements", "timescale")
    assert not not_preloaded.usable
    assert "shared_preload_libraries" in not_preloaded.reason
    assert "warning:" in judge_timescale("2.17.2", "timescaledb", "timescale").reason


def test_timescale_statements_only_on_the_timescale_path() -> None:
    plain_and_both = [m for m in load_migrations() if m.path != "timescale"]
    found = [
        (m.label, hit) for m in plain_and_both for hit in _TIMESCALE_ONLY.findall(_code(m.sql))
    ]
    assert found == []
    versions = {
        path: sorted(m.version for m in load_migrations() if m.path == path)
        for path in ("plain", "timescale")
    }
    assert versions["timescale"] == versions["plain"]
    assert len(timescale_statements()) >= 12


def test_rollups_read_by_the_api_are_real_time_aggregates() -> None:
    stmts = [s for _label, s in timescale_statements()]
    created = {}
    for s in stmts:
        m = re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) WITH \(([^)]*)\)", s)
        if m:
            created[m.group(1)] = m.group(2)
    assert set(_ROLLUP_VIEWS.values()) <= set(created)  # the API's 5m / 1h series
    for view, options in created.items():
        assert "timescaledb.continuous" in options, view
        assert "timescaledb.materialized_only = false" in options, view
    assert not [s for s in stmts if re.search(r"materialized_only\s*=\s*true", s, re.I)]


def test_refresh_windows_stay_inside_the_raw_retention() -> None:
    stmts = [s for _label, s in timescale_statements()]
    source = {}
    for s in stmts:
        m = re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) .* FROM (\w+) GROUP BY", s)
        if m:
            source[m.group(1)] = m.group(2)
    retention = {
        table: _days(interval)
        for s in stmts
        for table, interval in re.findall(r"add_retention_policy\('(\w+)', INTERVAL '([^']+)'", s)
    }
    policies = [s for s in stmts if "add_continuous_aggregate_policy(" in s]
    assert policies
    for view, table in source.items():
        assert [s for s in policies if f"'{view}'::regclass" in s], f"{view} has no refresh"
        starts = [
            _days(interval)
            for s in policies
            if f"'{view}'::regclass" in s
            for interval in re.findall(r"start_offset => INTERVAL '([^']+)'", s)
        ]
        assert starts, view
        assert table in retention, f"{table} has no retention policy"
        assert max(starts) < retention[table], (view, starts, retention[table])


@pytest.fixture
def plain_db(pg_server: str, db_templates: Templates) -> Iterator[str]:
    """A fresh database on the plain path: the tables the Timescale path makes hypertables,
    with the keys, triggers and foreign keys every migration gave them."""
    name = f"bk_t_{uuid.uuid4().hex[:12]}"
    url = clone(pg_server, db_templates.for_path("plain"), name)
    yield url
    drop(pg_server, name)


def test_hypertables_keys_triggers_foreign_keys_and_compression(plain_db: str) -> None:
    hypertables = _hypertables()
    assert hypertables == {"sensor_readings": "ts", "cabinet_power": "ts"}
    compress = {
        table: (segmentby, orderby)
        for _label, s in timescale_statements()
        for table, segmentby, orderby in re.findall(
            r"ALTER TABLE (\w+) SET \(timescaledb\.compress, "
            r"timescaledb\.compress_segmentby = '(\w+)', timescaledb\.compress_orderby = '(\w+)'",
            s,
        )
    }
    with psycopg.connect(plain_db) as conn:
        for table, time_col in hypertables.items():
            unique = conn.execute(
                """SELECT i.indisprimary,
                          array_agg(a.attname ORDER BY k.ord) AS cols
                   FROM pg_index i
                   CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE i.indrelid = %s::regclass AND i.indisunique
                   GROUP BY i.indexrelid, i.indisprimary""",
                (table,),
            ).fetchall()
            # the primary key alone: a unique index added later fails once chunks are compressed
            assert [(primary, cols) for primary, cols in unique] == [
                (True, ["sensor_id", time_col])
            ], table
            triggers = conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                (table,),
            ).fetchall()
            assert triggers == [], table
            referencing = conn.execute(
                "SELECT conrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = %s::regclass",
                (table,),
            ).fetchall()
            assert referencing == [], table
            assert compress.get(table) == ("sensor_id", time_col), table
