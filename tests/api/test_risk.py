"""The risk score on constructed data, against a hand-computed expectation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.scope import SiteScope
from api.services.risk import RiskSettings, combine, compute, compute_due, risk_step
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import T0

pytestmark = pytest.mark.usefixtures("registry")

NOW = T0 + timedelta(days=10)


def add_ticket(
    conn: psycopg.Connection[Any],
    no: str,
    *,
    opened: datetime,
    due: datetime,
    occurrences: int = 1,
    closed: datetime | None = None,
    site_id: str = "school-001",
) -> int:
    """Insert a ticket row directly."""
    row = conn.execute(
        """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status, title,
                                opened_at, due_at, closed_at, occurrences, last_occurrence_at)
           VALUES (%s, %s, 'manual', %s, %s, 2, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            no,
            site_id,
            f"r_{no}",
            f"s_{no}",
            "closed" if closed else "open",
            no,
            opened,
            due,
            closed,
            occurrences,
            opened,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_alarm(
    conn: psycopg.Connection[Any],
    key: str,
    rule: str,
    start: datetime,
    end: datetime | None,
    *,
    sensor_id: str | None = "fridge-1",
    camera_id: str | None = None,
) -> None:
    """Insert an alarm row directly (cleared when it has an end)."""
    conn.execute(
        """INSERT INTO alarms (alarm_key, site_id, sensor_id, camera_id, rule, tier, status,
                               started_at, raised_at, cleared_at)
           VALUES (%s, 'school-001', %s, %s, %s, 2, %s, %s, %s, %s)""",
        (key, sensor_id, camera_id, rule, "cleared" if end else "active", start, start, end),
    )


@pytest.fixture
def record(conn: psycopg.Connection[Any], registry: None) -> None:
    """school-001's record over the 90 days to NOW (2 sensors, 1 camera)."""
    add_ticket(conn, "t1", opened=T0, due=T0 + timedelta(days=1), occurrences=3)  # overdue, repeat
    add_ticket(conn, "t2", opened=T0, due=T0 + timedelta(days=30))  # neither
    add_ticket(  # overdue and repeated, but closed before the window began
        conn,
        "t3",
        opened=T0 - timedelta(days=200),
        due=T0 - timedelta(days=199),
        closed=T0 - timedelta(days=100),
        occurrences=4,
    )
    add_ticket(conn, "t4", opened=T0, due=T0 + timedelta(hours=1), closed=T0 + timedelta(hours=2))
    add_alarm(conn, "a1", "temp_high", T0, T0 + timedelta(hours=2))  # 120 min
    add_alarm(conn, "a2", "temp_low", NOW - timedelta(minutes=60), None, sensor_id="freezer-1")
    add_alarm(conn, "a3", "temp_high", T0 - timedelta(days=100), T0 - timedelta(days=99))  # out
    add_alarm(  # 2,592 min of 2 sensors × 129,600 min: 1 %
        conn,
        "a4",
        "sensor_offline",
        T0 + timedelta(days=1),
        T0 + timedelta(days=1, minutes=2592),
    )
    add_alarm(  # 9 days of 90 for the one camera: 10 %
        conn,
        "a5",
        "camera_offline",
        T0,
        T0 + timedelta(days=9),
        sensor_id=None,
        camera_id="cam-1",
    )
    conn.execute(
        "INSERT INTO inspections (id, site_id, kind, started_at) VALUES "
        "(1, 'school-001', 'routine', %s), (2, 'school-001', 'routine', %s)",
        (T0, T0 - timedelta(days=120)),
    )
    conn.execute(
        """INSERT INTO inspection_items (inspection_id, code, result, rule) VALUES
           (1, 'a', 'fail', 'x'), (1, 'b', 'pass', 'x'), (1, 'c', 'pass', 'x'),
           (1, 'd', 'pass', 'x'), (1, 'e', 'na', 'x'),
           (2, 'a', 'fail', 'x')"""
    )


# Hand computation (default weights and caps):
#   overdue   t1, t4 → 2 / 5 = 0.4           × 0.25 = 0.100
#   repeated  t1     → 1 / 5 = 0.2           × 0.15 = 0.030
#   excursion 120 + 60 = 180 min / 1440 = 0.125 × 0.20 = 0.025
#   sensor    2592 / (2 × 129600) = 0.01    × 0.10 = 0.001
#   camera    12960 / 129600 = 0.1          × 0.10 = 0.010
#   inspection 1 failed / 4 decided = 0.25  × 0.20 = 0.050
#   score = 100 × 0.216 / 1.0 = 21.6
EXPECTED = {
    "overdue": 0.4,
    "repeated": 0.2,
    "excursion": 0.125,
    "sensor_downtime": 0.01,
    "camera_downtime": 0.1,
    "inspection_fail": 0.25,
}


@pytest.mark.usefixtures("record")
def test_score_matches_the_hand_computed_formula(conn: psycopg.Connection[Any]) -> None:
    scores = {
        s.site_id: s
        for s in compute(conn=conn, now=NOW, scope=SiteScope.everything(), settings=RiskSettings())
    }
    s = scores["school-001"]
    assert s.components == pytest.approx(EXPECTED)
    assert s.score == pytest.approx(21.6)
    assert (s.raw.open_tickets, s.raw.overdue_tickets, s.raw.repeated_tickets) == (2, 2, 1)
    assert s.raw.camera_uptime == pytest.approx(0.9)
    assert scores["school-002"].score == 0.0  # no record, no sensors: nothing against it

    heavy = RiskSettings(
        w_overdue=1,
        w_repeated=0,
        w_excursion=0,
        w_sensor=0,
        w_camera=0,
        w_inspection=0,
        overdue_cap=2,
    )
    only = compute(
        conn=conn, now=NOW, scope=SiteScope.everything(), settings=heavy, site_id="school-001"
    )
    assert only[0].score == 100.0  # 2 overdue of a cap of 2
    scoped = compute(
        conn=conn,
        now=NOW,
        scope=SiteScope(all_sites=False, site_ids=("x",)),
        settings=RiskSettings(),
    )
    assert scoped == []
    assert combine(dict.fromkeys(EXPECTED, 1.0), RiskSettings()) == 100.0


@pytest.fixture
def client(
    db_url: str, settings: ApiSettings, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as c:
        yield c


@pytest.mark.usefixtures("record")
def test_daily_job_stores_history_and_the_site_view_shows_it(
    conn: psycopg.Connection[Any], client: TestClient
) -> None:
    settings = RiskSettings()
    assert compute_due(conn, now=NOW, settings=settings) == 2
    assert compute_due(conn, now=NOW + timedelta(hours=1), settings=settings) == 0  # fresh
    assert compute_due(conn, now=NOW + timedelta(days=1, seconds=1), settings=settings) == 2
    r = client.get("/api/v1/sites/school-001/risk")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["history"]) == 2
    assert body["history"][-1]["score"] == pytest.approx(21.6)
    assert body["history"][-1]["components"]["normalised"] == pytest.approx(EXPECTED)
    assert 0 <= body["current"]["score"] <= 100
    assert client.get("/api/v1/sites/nope/risk").status_code == 404
    stored = client.post("/api/v1/risk/compute")
    assert stored.status_code == 200
    assert len(stored.json()) == 2


def test_workers_store_the_daily_scores_on_their_own(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], registry: None
) -> None:
    from api.workers import Workers
    from tests.support.services import wait_until

    workers = Workers(database_url=db_url, settings=settings)
    workers.start()
    try:
        wait_until(
            lambda: conn.execute("SELECT count(*) FROM risk_scores").fetchone() == (2,),
            timeout=20,
            what="two stored risk scores",
        )
    finally:
        workers.stop()


@pytest.mark.usefixtures("record")
def test_the_score_now_follows_the_record_while_the_history_stays_daily(
    conn: psycopg.Connection[Any],
) -> None:
    from api.console.routes import console_overview
    from api.services.inspection_plan import _ELIGIBLE

    settings = RiskSettings()
    assert risk_step(conn, now=NOW, settings=settings) == 2 + 2  # history points, scores now
    assert risk_step(conn, now=NOW + timedelta(minutes=5), settings=settings) == 0  # fresh

    def overview() -> dict[str, float | None]:
        rows = console_overview(conn=conn, scope=SiteScope.everything()).data
        return {r.id: r.risk for r in rows}

    assert overview()["school-001"] == pytest.approx(21.6)
    # this morning a ticket at school-001 went past its deadline: the overview must say so
    # within the refresh, not tomorrow when the next history point is due
    add_ticket(conn, "t5", opened=NOW, due=NOW + timedelta(minutes=30))
    later = NOW + timedelta(minutes=40)
    assert risk_step(conn, now=later, settings=settings) == 2  # the scores now, no history
    assert conn.execute("SELECT count(*) FROM risk_scores").fetchone() == (2,)
    now_score = overview()["school-001"]
    assert now_score is not None
    assert now_score > 21.6 + 5.0  # one more overdue ticket: +5 points
    drawn = conn.execute(
        _ELIGIBLE.format(scope="true"), {"region": None}
    ).fetchall()  # the inspection draw weighs the same number
    assert [float(r[3]) for r in drawn if r[0] == "school-001"] == [pytest.approx(now_score)]


def test_two_risk_jobs_at_once_store_one_point_per_site(
    db_url: str, conn: psycopg.Connection[Any], registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica's worker runs the risk-score job: two runs a millisecond apart must not
    both store a day's point (the history the insurer reads would count the day twice)."""
    import contextlib
    import threading

    from api.services import risk as risk_mod

    real = risk_mod.compute
    both_computing = threading.Barrier(2, timeout=3)

    def compute_together(**kw: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_computing.wait()  # with the race, both runs get here before either stores
        return real(**kw)

    monkeypatch.setattr(risk_mod, "compute", compute_together)
    stored: list[int] = []

    def run(ms: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            stored.append(
                compute_due(c, now=NOW + timedelta(milliseconds=ms), settings=RiskSettings())
            )

    threads = [threading.Thread(target=run, args=(ms,)) for ms in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = conn.execute("SELECT site_id, count(*) FROM risk_scores GROUP BY 1 ORDER BY 1")
    assert rows.fetchall() == [("school-001", 1), ("school-002", 1)]
    assert sorted(stored) == [0, 2]


def test_a_decommissioned_sensor_does_not_count_as_the_others_downtime(
    conn: psycopg.Connection[Any], registry: None, hook: Any
) -> None:
    """freezer-1 went silent (its sensor_offline alarm is never cleared, nothing reports
    again) and was then taken out of the site file: the fridge that still reports is not
    0 % up because of it."""
    from bkcommon.sitefile import parse_site_file
    from brightkitchen.registry import sync_registry
    from tests.api.conftest import site_data

    add_alarm(conn, "off", "sensor_offline", T0 - timedelta(days=100), None, sensor_id="freezer-1")
    data = site_data(hook.url)
    data["sites"][0]["sensors"] = [s for s in data["sites"][0]["sensors"] if s["id"] == "fridge-1"]
    sync_registry(conn, parse_site_file(data))
    (s,) = compute(
        conn=conn, now=NOW, scope=SiteScope.everything(), settings=RiskSettings(),
        site_id="school-001",
    )  # fmt: skip
    assert s.raw.sensors == 1
    assert s.raw.sensor_uptime == 1.0
    assert s.components["sensor_downtime"] == 0.0
    assert s.score == 0.0
    # and its alarm ends with it (only a reading would have cleared it: none will come)
    status, reason = conn.execute(
        "SELECT a.status, f.payload->>'reason' FROM alarms a"
        " JOIN findings f ON f.finding_key = 'alarm:' || a.id || ':cleared'"
        " WHERE a.sensor_id = 'freezer-1'"
    ).fetchone() or (None, None)
    assert (status, reason) == ("cleared", "sensor removed from the site file")
