"""Camera-offline alarms from edge-box statuses, against the real PostgreSQL: a silent box
takes its cameras offline, a camera the box reports without frames goes offline alone, and
both clear when the box shows the camera again; the writer applies a box's last will."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bkcommon.messages import CameraStatus, EdgeStatus
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.rules.cameras import sweep_cameras
from ingest.rules.engine import RuleEngine
from ingest.validate import AcceptedStatus
from ingest.writer import BatchWriter

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SITE = {
    "regions": [{"id": "r1", "name": "Region"}],
    "sites": [
        {
            "id": "site-1",
            "name": "Canteen",
            "region": "r1",
            "edge_boxes": [
                {
                    "id": "box-1",
                    "cameras": [
                        {"id": "cam-1", "name": "后厨", "url": "rtsp://cam-1"},
                        {"id": "cam-2", "name": "专间", "url": "rtsp://cam-2"},
                    ],
                },
                {"id": "box-never", "cameras": [{"id": "cam-9", "url": "rtsp://cam-9"}]},
            ],
        }
    ],
}


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as c:
        sync_registry(c, parse_site_file(SITE))
        yield c


def status(ts: datetime, *, online: bool = True, cam2_online: bool = True) -> AcceptedStatus:
    cams = (
        []
        if not online
        else [
            CameraStatus(camera_id="cam-1", online=True, fps=5),
            CameraStatus(
                camera_id="cam-2", online=cam2_online, problem=None if cam2_online else "offline"
            ),
        ]
    )
    return AcceptedStatus(
        "site-1", "box-1", EdgeStatus(box_id="box-1", ts=ts, online=online, cameras=cams)
    )


def write(conn: psycopg.Connection[Any], st: AcceptedStatus, arrived: datetime) -> int:
    """Write one status as the ingest writer does, arriving at ``arrived``."""
    with conn.transaction(), conn.cursor() as cur:
        n = BatchWriter._write_statuses(cur, [st])
        cur.execute(
            "UPDATE edge_boxes SET status_received_at = %s WHERE id = 'box-1' AND %s > 0",
            (arrived, n),
        )
    return n


def alarms(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT camera_id, status, started_at, cleared_at, details ->> 'reason'
           FROM alarms WHERE rule = 'camera_offline' ORDER BY camera_id, id"""
    ).fetchall()


def findings(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT kind, subject, rule, tier FROM findings WHERE rule = 'camera_offline'
           ORDER BY id"""
    ).fetchall()


def test_a_silent_box_takes_its_cameras_offline_and_back(conn: psycopg.Connection[Any]) -> None:
    write(conn, status(T0), T0)
    assert sweep_cameras(conn, T0 + timedelta(seconds=119), 120) == 0  # not silent yet
    # box-never never reported: not installed yet, not judged
    assert sweep_cameras(conn, T0 + timedelta(seconds=121), 120) == 2
    assert [(a[0], a[1], a[2], a[4]) for a in alarms(conn)] == [
        ("cam-1", "active", T0, "box_silent"),
        ("cam-2", "active", T0, "box_silent"),
    ]
    assert findings(conn) == [
        ("alarm_raised", "cam-1", "camera_offline", 2),
        ("alarm_raised", "cam-2", "camera_offline", 2),
    ]
    assert sweep_cameras(conn, T0 + timedelta(seconds=300), 120) == 0  # one alarm a silence
    back = T0 + timedelta(minutes=30)
    write(conn, status(back), back)
    assert sweep_cameras(conn, back + timedelta(seconds=5), 120) == 2
    assert [(a[0], a[1], a[3]) for a in alarms(conn)] == [
        ("cam-1", "cleared", back),
        ("cam-2", "cleared", back),
    ]
    assert [f[0] for f in findings(conn)][2:] == ["alarm_cleared", "alarm_cleared"]


def test_a_camera_reported_without_frames_is_offline_alone(conn: psycopg.Connection[Any]) -> None:
    write(conn, status(T0, cam2_online=False), T0)
    assert sweep_cameras(conn, T0 + timedelta(seconds=5), 120) == 1
    ((cam, state, started, _cleared, reason),) = alarms(conn)
    assert (cam, state, started, reason) == ("cam-2", "active", T0, "camera_reported_offline")
    later = T0 + timedelta(seconds=30)
    write(conn, status(later, cam2_online=False), later)
    assert sweep_cameras(conn, later + timedelta(seconds=5), 120) == 0  # still the same outage
    fixed = T0 + timedelta(seconds=60)
    write(conn, status(fixed), fixed)
    assert sweep_cameras(conn, fixed + timedelta(seconds=5), 120) == 1
    assert alarms(conn)[0][1:4] == ("cleared", T0, fixed)


def test_the_last_will_is_applied_though_its_time_is_older(conn: psycopg.Connection[Any]) -> None:
    """The will is built when the box connects, so its time is older than every status the
    box sent since; compared by time alone it was dropped and a dead box stayed online."""
    will = status(T0, online=False)
    write(conn, status(T0 + timedelta(minutes=5)), T0 + timedelta(minutes=5))
    assert write(conn, will, T0 + timedelta(minutes=6)) == 1
    online, heard = conn.execute(
        "SELECT online, status_received_at FROM edge_boxes WHERE id = 'box-1'"
    ).fetchone() or (None, None)
    assert online is False
    assert heard == T0 + timedelta(minutes=6)
    # an older online status does not undo it; the next heartbeat does
    assert write(conn, status(T0 + timedelta(minutes=4)), T0 + timedelta(minutes=7)) == 0
    assert write(conn, status(T0 + timedelta(minutes=8)), T0 + timedelta(minutes=8)) == 1
    assert conn.execute("SELECT online FROM edge_boxes WHERE id = 'box-1'").fetchone() == (True,)


def test_the_engine_sweep_includes_cameras(conn: psycopg.Connection[Any]) -> None:
    write(conn, status(T0), T0)
    engine = RuleEngine(SensorDirectory(), box_offline_after_s=60)
    assert engine.sweep(conn, T0 + timedelta(seconds=61)) == 2


def test_a_retained_status_replayed_on_resubscribing_does_not_revive_a_dead_box(
    conn: psycopg.Connection[Any],
) -> None:
    write(conn, status(T0), T0)
    assert sweep_cameras(conn, T0 + timedelta(minutes=5), 120) == 2
    replay = AcceptedStatus(
        "site-1", "box-1", status(T0).status, retained=True
    )  # the broker sends the box's last status again when ingest reconnects
    with conn.transaction(), conn.cursor() as cur:
        BatchWriter._write_statuses(cur, [replay])
    assert sweep_cameras(conn, T0 + timedelta(minutes=6), 120) == 0
    assert [a[1] for a in alarms(conn)] == ["active", "active"]


def test_silence_is_counted_from_when_ingest_could_hear_again(
    conn: psycopg.Connection[Any],
) -> None:
    """After an ingest or broker outage of an hour every box's last status is an hour old:
    the box was not silent, the platform was deaf. Silence counts from the worker's
    subscription at the earliest, so nothing is raised unless the box stays quiet after it."""
    write(conn, status(T0), T0)
    back = T0 + timedelta(hours=1)  # the worker subscribed again
    assert sweep_cameras(conn, back + timedelta(seconds=5), 120, listening_since=back) == 0
    assert alarms(conn) == []
    # the box really is gone: two minutes after ingest could hear it again, it is offline,
    # and the alarm starts where the box was last heard
    assert sweep_cameras(conn, back + timedelta(seconds=121), 120, listening_since=back) == 2
    assert {a[2] for a in alarms(conn)} == {T0}
