"""The rule engine against the real PostgreSQL, called exactly as the ingest writer calls it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.rules.alarms import acknowledge_alarm, open_alarm_ids
from ingest.rules.engine import RuleEngine
from ingest.types import NewReading
from tests.support.services import REPO, wait_until

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
SITE = {
    "regions": [{"id": "r1", "name": "Region"}],
    "sites": [
        {
            "id": "site-1",
            "name": "Canteen",
            "region": "r1",
            "sensors": [
                {"id": "fridge-1", "profile": "fridge"},
                {"id": "fridge-2", "profile": "fridge", "rules": {"offline_after_s": 300}},
                {"id": "hot-1", "profile": "hot_holding", "rules": {"delay_s": 120}},
            ],
        }
    ],
}

Row = tuple[float, float, bool | None, float | None]


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url) as c:
        sync_registry(c, parse_site_file(SITE))
        yield c


def engine_for(conn: psycopg.Connection[Any]) -> RuleEngine:
    directory = SensorDirectory()
    directory.refresh(conn)
    conn.commit()
    return RuleEngine(directory)


def insert_and_apply(
    cur: psycopg.Cursor[Any],
    engine: RuleEngine,
    sensor: str,
    rows: list[Row],
    base: datetime = T0,
    arrived: datetime | None = None,
) -> int:
    """Insert readings as the writer does (duplicates skipped) and apply the new ones.

    ``arrived`` is their receive time; by default the newest reading's own time (as if
    the batch was delivered the moment it was taken).
    """
    new: list[NewReading] = []
    newest = max(base + timedelta(minutes=m) for m, *_ in rows)
    at = arrived or newest
    for minute, temp, door, batt in rows:
        ts = base + timedelta(minutes=minute)
        cur.execute(
            "INSERT INTO sensor_readings (sensor_id, ts, temp_c, door_open, battery_pct, "
            "received_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING ts",
            (sensor, ts, temp, door, batt, at),
        )
        if cur.fetchone() is not None:
            new.append(NewReading(sensor, ts, temp, door, batt, at))
    if new:
        cur.execute(
            "UPDATE sensors SET last_reading_at = GREATEST(last_reading_at, %s), "
            "last_received_at = GREATEST(last_received_at, %s) WHERE id = %s",
            (max(r.ts for r in new), at, sensor),
        )
    return engine.apply(cur, new, datetime.now(UTC))


def batch(
    conn: psycopg.Connection[Any],
    engine: RuleEngine,
    sensor: str,
    rows: list[Row],
    base: datetime = T0,
    arrived: datetime | None = None,
) -> int:
    with conn.transaction(), conn.cursor() as cur:
        return insert_and_apply(cur, engine, sensor, rows, base, arrived)


def temps(minutes: range, temp: float) -> list[Row]:
    return [(m, temp, False, None) for m in minutes]


def alarms(conn: psycopg.Connection[Any], rule: str | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, sensor_id, rule, tier, status, started_at, raised_at, cleared_at, peak_temp_c "
        "FROM alarms WHERE %s::text IS NULL OR rule = %s ORDER BY id",
        (rule, rule),
    ).fetchall()


def scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def findings(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT finding_key, kind, site_id, subject, rule, tier, occurred_at, payload "
        "FROM findings ORDER BY id"
    ).fetchall()


def test_held_excursion_opens_one_alarm_and_clears_below_band(
    conn: psycopg.Connection[Any],
) -> None:
    engine = engine_for(conn)
    assert batch(conn, engine, "fridge-1", temps(range(3), 9.0)) == 0
    assert batch(conn, engine, "fridge-1", temps(range(3, 9), 9.5)) == 1
    assert batch(conn, engine, "fridge-1", [(9, 11.0, True, None), (10, 7.8, False, None)]) == 0
    (a,) = alarms(conn)
    alarm_id, sensor, rule, tier, status, started, raised, cleared, peak = a
    assert (sensor, rule, tier, status) == ("fridge-1", "temp_high", 2, "active")
    assert (started, raised, cleared) == (T0, T0 + timedelta(minutes=5), None)
    assert peak == 11.0  # updated while active, door reading included
    (f,) = findings(conn)
    assert f[:7] == (
        f"alarm:{alarm_id}:raised",
        "alarm_raised",
        "site-1",
        "fridge-1",
        "temp_high",
        2,
        T0 + timedelta(minutes=5),
    )
    assert f[7]["alarm_id"] == alarm_id
    assert f[7]["limit_c"] == 8.0
    assert batch(conn, engine, "fridge-1", temps(range(11, 12), 7.5)) == 1
    (a,) = alarms(conn)
    assert a[4] == "cleared"
    assert a[7] == T0 + timedelta(minutes=11)
    assert [x[1] for x in findings(conn)] == ["alarm_raised", "alarm_cleared"]
    assert findings(conn)[1][0] == f"alarm:{alarm_id}:cleared"


def test_spike_door_and_band_do_not_alarm(conn: psycopg.Connection[Any]) -> None:
    engine = engine_for(conn)
    rows: list[Row] = [(0, 12.0, False, None), (1, 5.0, False, None)]  # spike
    rows += [(m, 14.0, True, None) for m in range(2, 9)]  # door open for 7 min
    rows += [(9, 10.0, False, None), (10, 9.0, False, None), (11, 7.9, False, None)]  # grace
    rows += temps(range(12, 30), 8.0)  # at the limit
    assert batch(conn, engine, "fridge-1", rows) == 0
    assert alarms(conn) == []


def test_crash_before_commit_then_redelivery_gives_one_alarm(conn: psycopg.Connection[Any]) -> None:
    engine = engine_for(conn)
    rows = temps(range(7), 10.0)
    with conn.cursor() as cur:
        assert insert_and_apply(cur, engine, "fridge-1", rows) == 1
    conn.rollback()  # the process died before commit: nothing of it remains
    assert alarms(conn) == []
    assert batch(conn, engine, "fridge-1", rows) == 1  # redelivered: new again, evaluated again
    assert batch(conn, engine, "fridge-1", rows) == 0  # redelivered after commit: duplicates
    with conn.transaction(), conn.cursor() as cur:  # even if a caller passed them again
        assert (
            engine.apply(
                cur,
                [
                    NewReading("fridge-1", T0 + timedelta(minutes=m), 10.0, False, None)
                    for m in range(7)
                ],
                datetime.now(UTC),
            )
            == 0
        )
    assert len(alarms(conn)) == 1
    assert len(findings(conn)) == 1


_CHILD = """
import sys, time
from datetime import UTC, datetime
import psycopg
from tests.ingest.rules.test_engine_db import engine_for, insert_and_apply, temps
with psycopg.connect(sys.argv[1]) as conn:
    engine = engine_for(conn)
    with conn.cursor() as cur:
        n = insert_and_apply(cur, engine, "fridge-1", temps(range(7), 10.0))
        print(n, conn.info.backend_pid, flush=True)
        time.sleep(60)
"""


@pytest.mark.slow
def test_kill_9_mid_batch_loses_and_repeats_nothing(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, db_url], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        n, pid = child.stdout.readline().split()
        assert n == "1"  # raised inside its open transaction
    finally:
        child.kill()  # SIGKILL: no commit, no cleanup
        child.wait(10)

    def backend_gone() -> bool:
        gone = scalar(conn, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (int(pid),))
        conn.commit()  # the statistics snapshot is per transaction
        return bool(gone)

    wait_until(backend_gone, timeout=10, what="the killed backend to go")
    assert alarms(conn) == []
    engine = engine_for(conn)
    assert batch(conn, engine, "fridge-1", temps(range(7), 10.0)) == 1
    assert len(alarms(conn)) == 1


def test_restart_mid_excursion_raises_on_time_once(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    assert batch(conn, engine_for(conn), "fridge-1", temps(range(4), 9.0)) == 0
    with psycopg.connect(db_url) as conn2:  # a new worker process: nothing in memory
        engine2 = engine_for(conn2)
        assert batch(conn2, engine2, "fridge-1", temps(range(4, 5), 9.0)) == 0
        assert batch(conn2, engine2, "fridge-1", temps(range(5, 8), 9.0)) == 1
    (a,) = alarms(conn)
    assert (a[5], a[6]) == (T0, T0 + timedelta(minutes=5))


def test_two_engines_on_the_same_sensor_raise_one_alarm(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    barrier = threading.Barrier(2, timeout=10)
    results: dict[int, int] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with psycopg.connect(db_url) as c:
                engine = engine_for(c)
                with c.transaction(), c.cursor() as cur:
                    # Each worker got different readings of the same excursion, each long
                    # enough to raise on its own.
                    rows = temps(range(10 * i, 10 * i + 8), 10.0)
                    new = []
                    for m, temp, door, batt in rows:
                        ts = T0 + timedelta(minutes=m)
                        cur.execute(
                            "INSERT INTO sensor_readings (sensor_id, ts, temp_c) "
                            "VALUES ('fridge-1', %s, %s)",
                            (ts, temp),
                        )
                        new.append(NewReading("fridge-1", ts, temp, door, batt))
                    barrier.wait()
                    results[i] = engine.apply(cur, new, datetime.now(UTC))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(results.values()) == [0, 1]
    (a,) = alarms(conn)
    assert a[2] == "temp_high"
    assert len(findings(conn)) == 1


def test_offline_sweep_raises_once_and_clears_when_a_reading_arrives(
    conn: psycopg.Connection[Any],
) -> None:
    engine = engine_for(conn)
    now = datetime.now(UTC).replace(microsecond=0)
    last = now - timedelta(minutes=20)
    for sid in ("fridge-1", "hot-1"):  # fresh: not offline
        batch(conn, engine, sid, [(0, 5.0 if sid == "fridge-1" else 65.0, False, None)], now)
    # fridge-2 (offline after 300 s) was last heard from 20 minutes ago.
    batch(conn, engine, "fridge-2", [(-25, 5.0, False, None), (-20, 5.0, False, None)], now)

    listener = psycopg.connect(conn.info.dsn, autocommit=True)
    try:
        listener.execute("LISTEN bk_findings")
        assert engine.sweep(conn, now) == 1
        assert engine.sweep(conn, now + timedelta(seconds=30)) == 0  # already raised
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == ["bk_findings"]
    finally:
        listener.close()
    (a,) = alarms(conn, "sensor_offline")
    assert (a[1], a[2], a[3], a[4], a[5], a[6]) == (
        "fridge-2",
        "sensor_offline",
        2,
        "active",
        last,
        now,
    )
    f = findings(conn)[-1]
    assert f[0] == f"alarm:{a[0]}:raised"
    assert datetime.fromisoformat(f[7]["last_received_at"]) == last
    assert datetime.fromisoformat(f[7]["last_reading_at"]) == last
    assert f[7]["never_seen"] is False

    # This used to stay offline ("a late reading from before the outage does not prove the
    # sensor is back"). Offline means "not heard from": a reading that ARRIVES after the
    # alarm started clears it, at its arrival, even though its own timestamp (-22 min, a
    # gateway's buffered reading) is older than the alarm's start.
    back = now + timedelta(minutes=1)
    assert batch(conn, engine, "fridge-2", [(-22, 5.0, False, None)], now, arrived=back) == 1
    (a,) = alarms(conn, "sensor_offline")
    assert (a[4], a[7]) == ("cleared", back)
    assert findings(conn)[-1][0] == f"alarm:{a[0]}:cleared"
    seen = conn.execute(
        "SELECT last_reading_at, last_received_at FROM sensors WHERE id = 'fridge-2'"
    ).fetchone()
    assert seen == (last, back)  # the reading time stays, the arrival moves
    assert engine.sweep(conn, now + timedelta(minutes=2)) == 0
    # Silent again past the limit: a new outage is a new alarm, starting at the last arrival.
    assert engine.sweep(conn, back + timedelta(seconds=301)) == 1
    assert [(r[4], r[5]) for r in alarms(conn, "sensor_offline")] == [
        ("cleared", last),
        ("active", back),
    ]


def test_an_ingest_outage_is_not_every_sensor_gone_silent(conn: psycopg.Connection[Any]) -> None:
    """After an hour without ingest, every sensor's last arrival is an hour old: the sensors
    were not silent, nobody was listening. Silence counts from the worker's subscription."""
    engine = engine_for(conn)
    now = datetime.now(UTC).replace(microsecond=0)
    for sid in ("fridge-1", "fridge-2", "hot-1"):
        batch(conn, engine, sid, [(0, 5.0 if sid != "hot-1" else 65.0, False, None)], now)
    back = now + timedelta(hours=1)
    assert engine.sweep(conn, back + timedelta(seconds=10), listening_since=back) == 0
    # fridge-2 (300 s) stays quiet once ingest listens again: offline, from its last arrival
    assert engine.sweep(conn, back + timedelta(seconds=301), listening_since=back) == 1
    (a,) = alarms(conn, "sensor_offline")
    assert (a[1], a[5]) == ("fridge-2", now)


def test_sensor_with_a_lagging_clock_is_not_offline_while_it_reports(
    conn: psycopg.Connection[Any],
) -> None:
    engine = engine_for(conn)
    now = datetime.now(UTC).replace(microsecond=0)
    # fridge-2's clock is 30 minutes behind (offline after 300 s); its readings arrive now.
    for k in range(3):
        arrived = now + timedelta(minutes=k)
        batch(conn, engine, "fridge-2", [(k - 30, 5.0, False, None)], now, arrived=arrived)
        assert engine.sweep(conn, arrived + timedelta(seconds=299)) == 0
    assert alarms(conn, "sensor_offline") == []
    # When it does fall silent, the alarm starts at its last arrival, not its last stamp.
    assert engine.sweep(conn, now + timedelta(minutes=2, seconds=301)) == 1
    (a,) = alarms(conn, "sensor_offline")
    assert (a[1], a[5]) == ("fridge-2", now + timedelta(minutes=2))
    details = scalar(conn, "SELECT details FROM alarms WHERE id = %s", (a[0],))
    assert datetime.fromisoformat(details["last_reading_at"]) == now - timedelta(minutes=28)


def test_concurrent_sweeps_raise_once_and_never_seen_uses_registration_time(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    registered = scalar(conn, "SELECT max(updated_at) FROM sensors")
    conn.commit()
    now = registered + timedelta(seconds=301)  # only fridge-2 (300 s) is overdue yet
    barrier = threading.Barrier(4, timeout=10)
    counts: list[int] = []

    def sweeper() -> None:
        with psycopg.connect(db_url) as c:
            engine = RuleEngine(SensorDirectory())
            barrier.wait()
            counts.append(engine.sweep(c, now))

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(counts) == [0, 0, 0, 1]
    (a,) = alarms(conn, "sensor_offline")
    assert a[1] == "fridge-2"
    details = scalar(conn, "SELECT details FROM alarms WHERE id = %s", (a[0],))
    assert details["never_seen"] is True
    assert RuleEngine(SensorDirectory()).sweep(conn, now + timedelta(minutes=10)) == 2


def test_low_battery_raises_once_and_clears(conn: psycopg.Connection[Any]) -> None:
    engine = engine_for(conn)
    assert batch(conn, engine, "hot-1", [(0, 65, None, 30.0), (1, 65, None, 10.0)]) == 1
    assert batch(conn, engine, "hot-1", [(2, 65, None, 9.0), (3, 65, None, 18.0)]) == 0
    (a,) = alarms(conn)
    assert (a[2], a[3], a[4], a[5]) == ("low_battery", 3, "active", T0 + timedelta(minutes=1))
    assert batch(conn, engine, "hot-1", [(4, 65, None, 25.0)]) == 1
    assert alarms(conn)[0][4] == "cleared"
    assert findings(conn)[0][7]["battery_pct"] == 10.0


def test_hot_holding_low_side_uses_per_sensor_delay(conn: psycopg.Connection[Any]) -> None:
    engine = engine_for(conn)
    assert batch(conn, engine, "hot-1", temps(range(4), 55.0)) == 1
    (a,) = alarms(conn)
    assert (a[2], a[6], a[8]) == ("temp_low", T0 + timedelta(minutes=2), 55.0)


def test_acknowledged_alarm_still_clears(conn: psycopg.Connection[Any]) -> None:
    engine = engine_for(conn)
    batch(conn, engine, "fridge-1", temps(range(6), 9.0))
    (alarm_id,) = open_alarm_ids(conn, ["fridge-1"])
    assert acknowledge_alarm(conn, alarm_id, "officer-1") is True
    assert acknowledge_alarm(conn, alarm_id, "officer-1") is False
    row = conn.execute(
        "SELECT status, acknowledged_by FROM alarms WHERE id = %s", (alarm_id,)
    ).fetchone()
    assert row == ("acknowledged", "officer-1")
    assert batch(conn, engine, "fridge-1", temps(range(6, 7), 4.0)) == 1
    assert open_alarm_ids(conn, ["fridge-1"]) == []


def test_a_late_excursion_is_raised_and_cleared_with_its_peak(
    conn: psycopg.Connection[Any],
) -> None:
    """A gateway replays its outage buffer after its first live reading: the stretch it
    covers is judged again, and the excursion in it becomes an alarm of its own."""
    engine = engine_for(conn)
    batch(conn, engine, "fridge-1", temps(range(30, 31), 4.0))  # the live reading first
    late = [(m, 12.0 if m != 10 else 15.0, False, None) for m in range(0, 20)]
    assert batch(conn, engine, "fridge-1", late + temps(range(20, 25), 4.0)) == 2
    ((_, _, rule, _, status, started, raised, cleared, peak),) = alarms(conn)
    assert (rule, status, peak) == ("temp_high", "cleared", 15.0)
    assert (started, raised, cleared) == (
        T0,
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=20),
    )
    assert [f[1] for f in findings(conn)] == ["alarm_raised", "alarm_cleared"]


def test_late_readings_of_an_excursion_seen_live_add_no_second_alarm(
    conn: psycopg.Connection[Any],
) -> None:
    """The live state raised the excursion from its later readings; the earlier ones that
    arrive afterwards are the same event, not a second alarm."""
    engine = engine_for(conn)
    batch(conn, engine, "fridge-1", temps(range(10, 20), 12.0))  # live: raised from minute 10
    assert len(alarms(conn)) == 1
    batch(conn, engine, "fridge-1", temps(range(0, 10), 12.0) + temps(range(20, 22), 4.0))
    assert len(alarms(conn)) == 1


def test_late_quiet_readings_change_nothing(conn: psycopg.Connection[Any]) -> None:
    engine = engine_for(conn)
    batch(conn, engine, "fridge-1", temps(range(30, 31), 4.0))
    assert batch(conn, engine, "fridge-1", temps(range(0, 30), 4.5)) == 0
    assert alarms(conn) == []
