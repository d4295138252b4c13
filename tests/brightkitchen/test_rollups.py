"""Rollups, late readings, retention, compression and concurrent writers on both schema paths.

Each test runs on plain PostgreSQL and on TimescaleDB (``path_db``); the Timescale run is
skipped, with the reason, where the test server cannot create the extension. Readings go
in through the ingest writer (which maintains the plain path's rollup tables) and the
5-minute / 1-hour series are read with the API's own query, so what is checked is what a
client sees. On TimescaleDB the policies are unscheduled in the test database and the
tests run them themselves (``run_job``), at the points they choose.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from api.auth.scope import SiteScope
from api.queries.readings import sensor_readings
from api.schemas import ReadingPointPublic, Resolution
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.validate import Validator
from ingest.writer import BatchWriter, Item
from tests.support.databases import PathDb

P = "bk/v1"
SITE = {
    "version": 1,
    "regions": [{"id": "r1", "name": "Region"}],
    "sites": [
        {
            "id": "site-a",
            "name": "Canteen A",
            "region": "r1",
            "sensors": [
                {"id": "fridge-1", "profile": "fridge"},
                {"id": "fridge-2", "profile": "fridge"},
            ],
        }
    ],
}


@pytest.fixture
def db(path_db: PathDb) -> PathDb:
    """``path_db`` with a site registered long ago (ingest refuses readings stamped long
    before their site's registration)."""
    with psycopg.connect(path_db.url) as conn:
        sync_registry(conn, parse_site_file(SITE))
        conn.execute("UPDATE sites SET created_at = now() - INTERVAL '800 days'")
        if path_db.path == "timescale":  # user jobs have ids from 1000
            conn.execute(
                "SELECT alter_job(job_id, scheduled => false) "
                "FROM timescaledb_information.jobs WHERE job_id >= 1000"
            )
    return path_db


def hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def write(url: str, points: list[tuple[datetime, float]], sensor: str = "fridge-1") -> int:
    """Write readings through the ingest validator and writer; return how many were new."""
    topic = f"{P}/site-a/sensor/{sensor}/reading"
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        directory = SensorDirectory()
        directory.refresh(conn)
        conn.commit()
        check = Validator(directory, P)
        items = []
        for i, (ts, temp) in enumerate(points):
            raw = json.dumps({"ts": ts.isoformat(), "seq": i, "temp_c": temp}).encode()
            items.append(Item(topic, raw, now, check(topic, raw, now)))
        res = BatchWriter(worker_id="rollup-test").write(conn, items)
    assert not res.dead, res.dead
    return res.inserted


def series(url: str, resolution: Resolution, start: datetime, end: datetime) -> list[Any]:
    """The API's answer for fridge-1 in [start, end)."""
    with psycopg.connect(url) as conn:
        out = sensor_readings(
            conn=conn,
            scope=SiteScope.everything(),
            sensor_id="fridge-1",
            from_ts=start,
            to_ts=end,
            resolution=resolution,
            limit=10_000,
        )
    return out.points


def summary(points: list[ReadingPointPublic]) -> list[tuple[datetime, int, float, float, float]]:
    return [
        (p.ts, p.n, p.temp_min_c or 0.0, p.temp_max_c or 0.0, round(p.temp_c, 3)) for p in points
    ]


def materialize(db: PathDb, until: datetime) -> None:
    """On TimescaleDB, materialize both aggregates up to ``until`` (the watermark moves
    there: later readings are served by the real-time part); nothing to do on plain."""
    if db.path != "timescale":
        return
    with psycopg.connect(db.url, autocommit=True) as conn:
        for view in ("readings_5m", "readings_1h"):
            conn.execute(
                sql.SQL("CALL refresh_continuous_aggregate({}, NULL, {})").format(
                    sql.Literal(view), sql.Literal(until)
                )
            )


def job_ids(url: str, where: str, *params: object) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT j.job_id FROM timescaledb_information.jobs AS j "
            "LEFT JOIN timescaledb_information.continuous_aggregates AS c "
            "  ON c.materialization_hypertable_name = j.hypertable_name "
            "WHERE " + where + " ORDER BY j.job_id",
            params or None,
        ).fetchall()
    return [int(r[0]) for r in rows]


def run_jobs(url: str, ids: list[int]) -> None:
    """Run TimescaleDB jobs now, as the scheduler would."""
    assert ids, "no such job"
    with psycopg.connect(url, autocommit=True) as conn:
        for job in ids:
            conn.execute(sql.SQL("CALL run_job({})").format(sql.Literal(job)))


REFRESH = "j.proc_name = 'policy_refresh_continuous_aggregate'"


def test_rollups_include_readings_just_written(db: PathDb) -> None:
    """5m / 1h answers hold the materialized hours and the readings written since."""
    h = hour_floor(datetime.now(UTC))
    old = [(h - timedelta(hours=2) + timedelta(minutes=i), float(i)) for i in range(60)]
    assert write(db.url, old) == 60
    materialize(db, h - timedelta(hours=1))
    new = [(h - timedelta(minutes=30) + timedelta(minutes=i), 100.0 + i) for i in range(30)]
    assert write(db.url, new) == 30

    five = summary(series(db.url, Resolution.FIVE_MIN, h - timedelta(hours=2), h))
    assert [p[1] for p in five] == [5] * 18
    assert five[0] == (h - timedelta(hours=2), 5, 0.0, 4.0, 2.0)
    assert five[-1] == (h - timedelta(minutes=5), 5, 125.0, 129.0, 127.0)
    hourly = summary(series(db.url, Resolution.ONE_HOUR, h - timedelta(hours=2), h))
    assert hourly == [
        (h - timedelta(hours=2), 60, 0.0, 59.0, 29.5),
        (h - timedelta(hours=1), 30, 100.0, 129.0, 114.5),
    ]


def test_late_readings_reach_the_rollups(db: PathDb) -> None:
    """Readings stamped days and months back, arriving after their buckets were
    materialized, are in the rollups once the refresh policies have run (at once on
    plain PostgreSQL)."""
    h = hour_floor(datetime.now(UTC))
    assert write(db.url, [(h - timedelta(hours=2) + timedelta(minutes=i), 1.0) for i in range(60)])
    materialize(db, h - timedelta(hours=1))
    late: list[tuple[datetime, float]] = []
    for age in (timedelta(days=10), timedelta(days=300)):
        late += [(h - age + timedelta(minutes=i), 50.0 + i) for i in range(12)]
    assert write(db.url, late) == 24
    if db.path == "timescale":
        run_jobs(db.url, job_ids(db.url, REFRESH))

    for age in (timedelta(days=10), timedelta(days=300)):
        start = h - age
        five = summary(series(db.url, Resolution.FIVE_MIN, start, start + timedelta(hours=1)))
        assert [(p[1], p[2], p[3]) for p in five] == [
            (5, 50.0, 54.0),
            (5, 55.0, 59.0),
            (2, 60.0, 61.0),
        ]
        hourly = summary(series(db.url, Resolution.ONE_HOUR, start, start + timedelta(hours=1)))
        assert hourly == [(start, 12, 50.0, 61.0, 55.5)]


def test_policies_compression_and_retention(db: PathDb) -> None:
    """On TimescaleDB: real-time aggregates, refresh windows inside the raw retention,
    compressed chunks still read and written (redelivery included), raw readings past
    retention dropped while their rollups stay. On plain PostgreSQL nothing is compressed
    or dropped: old readings stay, raw and rolled up."""
    h = hour_floor(datetime.now(UTC))
    month_ago = h - timedelta(days=20)
    batch = [(month_ago + timedelta(minutes=i), 3.0 + i) for i in range(10)]
    assert write(db.url, batch) == 10
    ancient = h - timedelta(days=420)
    assert write(db.url, [(ancient + timedelta(minutes=i), -18.0) for i in range(6)]) == 6

    if db.path == "timescale":
        _check_timescale_policies(db.url)
        run_jobs(db.url, job_ids(db.url, "j.proc_name = 'policy_compression'"))
        with psycopg.connect(db.url) as conn:
            row = conn.execute(
                "SELECT bool_and(is_compressed) FROM timescaledb_information.chunks "
                "WHERE hypertable_name = 'sensor_readings' "
                "AND range_start <= %s AND range_end > %s",
                (month_ago, month_ago),
            ).fetchone()
        assert row == (True,)
        with psycopg.connect(db.url, autocommit=True) as conn:  # aggregate it while raw exists
            conn.execute(
                sql.SQL("CALL refresh_continuous_aggregate('readings_1h', {}, {})").format(
                    sql.Literal(ancient), sql.Literal(ancient + timedelta(hours=1))
                )
            )
        run_jobs(db.url, job_ids(db.url, "j.proc_name = 'policy_retention'"))
        run_jobs(db.url, job_ids(db.url, REFRESH))  # must not reach the dropped range

    # Redelivered readings in a compressed chunk are duplicates; the new late readings
    # after them in the same batch are stored (TimescaleDB before 2.18.1 dropped them).
    late = [(month_ago + timedelta(minutes=30 + i), 40.0 + i) for i in range(2)]
    assert write(db.url, batch[:3] + late) == 2
    raw = series(db.url, Resolution.RAW, month_ago, month_ago + timedelta(hours=1))
    assert [p.temp_c for p in raw] == [3.0 + i for i in range(10)] + [40.0, 41.0]
    if db.path == "timescale":
        run_jobs(db.url, job_ids(db.url, REFRESH))
    hourly = summary(series(db.url, Resolution.ONE_HOUR, month_ago, month_ago + timedelta(hours=1)))
    assert hourly == [(month_ago, 12, 3.0, 41.0, round((sum(range(3, 13)) + 81.0) / 12, 3))]

    old_raw = series(db.url, Resolution.RAW, ancient, ancient + timedelta(hours=1))
    assert [p.temp_c for p in old_raw] == ([] if db.path == "timescale" else [-18.0] * 6)
    old_hour = summary(series(db.url, Resolution.ONE_HOUR, ancient, ancient + timedelta(hours=1)))
    assert old_hour == [(ancient, 6, -18.0, -18.0, -18.0)]


def _check_timescale_policies(url: str) -> None:
    with psycopg.connect(url) as conn:
        realtime = conn.execute(
            "SELECT view_name, materialized_only "
            "FROM timescaledb_information.continuous_aggregates ORDER BY view_name"
        ).fetchall()
        refresh = conn.execute(
            "SELECT c.view_name, (j.config->>'start_offset')::interval, "
            "       (j.config->>'end_offset')::interval, j.schedule_interval "
            "FROM timescaledb_information.jobs AS j "
            "JOIN timescaledb_information.continuous_aggregates AS c "
            "  ON c.materialization_hypertable_name = j.hypertable_name "
            "WHERE " + REFRESH + " ORDER BY c.view_name"
        ).fetchall()
        other = conn.execute(
            "SELECT proc_name, config->>'compress_after', config->>'drop_after' "
            "FROM timescaledb_information.jobs "
            "WHERE hypertable_name = 'sensor_readings' ORDER BY proc_name"
        ).fetchall()
        precreate = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs "
            "WHERE proc_name = 'bk_precreate_reading_chunks'"
        ).fetchone()
    assert realtime == [("readings_1h", False), ("readings_5m", False)]
    assert refresh == [
        ("readings_1h", timedelta(days=390), timedelta(hours=1), timedelta(minutes=15)),
        ("readings_5m", timedelta(days=390), timedelta(minutes=5), timedelta(minutes=5)),
    ]
    assert [(p, c or d) for p, c, d in other] == [
        ("policy_compression", "7 days"),
        ("policy_retention", "400 days"),
    ]
    assert precreate == (1,)


def test_concurrent_writers_do_not_wait_for_each_other(db: PathDb) -> None:
    """Two transactions writing readings of a day nobody wrote yet (other sensors, so no
    key is shared): the second never waits for the first, because on TimescaleDB the
    day's chunk was created ahead by the pre-creation job, not by the first writer."""
    if db.path == "timescale":
        run_jobs(db.url, job_ids(db.url, "j.proc_name = 'bk_precreate_reading_chunks'"))
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    insert = "INSERT INTO sensor_readings (sensor_id, ts, temp_c) VALUES (%s, %s, 4.0)"
    first_done = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def first_writer() -> None:
        try:
            with psycopg.connect(db.url) as conn:
                conn.execute(insert, ("fridge-1", tomorrow))
                first_done.set()
                release.wait(10)
                conn.rollback()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
            first_done.set()

    t = threading.Thread(target=first_writer)
    t.start()
    try:
        assert first_done.wait(10)
        with psycopg.connect(db.url) as conn:
            conn.execute("SET lock_timeout = '3s'")
            started = time.monotonic()
            conn.execute(insert, ("fridge-2", tomorrow))
            waited = time.monotonic() - started
            conn.rollback()
    finally:
        release.set()
        t.join(15)
    assert errors == []
    assert waited < 1.0
