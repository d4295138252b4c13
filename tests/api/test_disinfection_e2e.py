"""End to end on real Mosquitto and PostgreSQL: cabinet readings over MQTT through a real
ingest worker (restarted mid-cycle), the meal window closing, 餐具未消毒 / 餐具消毒不达标
tickets and the officer's webhook."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.services.notify.base import Channel
from api.services.notify.channels import build_channels, close_channels
from api.services.notify.dispatcher import dispatch_due
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from bkcommon.topics import reading_topic
from brightkitchen.registry import sync_registry
from ingest.settings import IngestSettings
from ingest.worker import IngestWorker
from tests.api.conftest import HookServer, site_data
from tests.ingest.conftest import RunningWorker, publisher
from tests.support.services import wait_until


def _noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now about 12:xx, so a 09:00–10:00 lunch has closed
    its 60-minute window whatever time the test runs."""
    n = 12 - now.hour
    if n > 14:
        n -= 24
    if n < -12:
        n += 24
    return f"Etc/GMT{-n:+d}" if n else "Etc/GMT"


@pytest.fixture
def channels(settings: ApiSettings) -> Iterator[dict[str, Channel]]:
    chans = build_channels(settings)
    yield chans
    close_channels(chans)


def _worker(db_url: str, mqtt_url: str, prefix: str, group: str, client_id: str) -> RunningWorker:
    """An ingest worker that sweeps every 0.3 s; restarted with the same client id, as a
    service restart does (its session, and what the broker queued for it, carry over)."""
    common = CommonSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_prefix=prefix)
    opts = IngestSettings(
        group=group,
        client_id=client_id,
        flush_interval_ms=20,
        directory_refresh_s=1,
        sweep_interval_s=0.3,
        guard=False,
    )
    return RunningWorker(IngestWorker(common, opts))


def _reading(ts: datetime, seq: int, temp: float) -> bytes:
    body = {
        "schema_version": 1,
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "seq": seq,
        "temp_c": temp,
    }
    return json.dumps(body).encode()


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_missed_and_failed_cycles_reach_the_officer(
    conn: psycopg.Connection[Any],
    db_url: str,
    mqtt_url: str,
    topic_prefix: str,
    hook: HookServer,
    settings: ApiSettings,
    channels: dict[str, Channel],
) -> None:
    now = utcnow()
    zone = _noon_zone(now)
    data = site_data(hook.url)
    site = data["sites"][0]
    site["sensors"] += [
        {"id": "cab-1", "name": "消毒柜 1", "profile": "disinfection"},
        {
            "id": "cab-2",
            "name": "消毒柜 2",
            "profile": "disinfection",
            "cabinet": {"type": "infrared"},
        },
    ]
    site["meals"] = {
        "timezone": zone,
        "services": [
            {"meal": "lunch", "start": "09:00", "end": "10:00", "weekdays": [1, 2, 3, 4, 5, 6, 7]}
        ],
    }
    sync_registry(conn, parse_site_file(data))
    conn.execute("UPDATE sites SET created_at = %s", (now - timedelta(days=1),))
    # Registered "now" first: the sweep judges nothing while the readings arrive.
    conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (now,))
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(zone))
    meal_end = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
    # cab-1: a steam cycle that holds 100 °C only 6 minutes (too short), a reading a minute
    temps = [30.0, 75.0, *[101.0] * 7, 50.0]
    topic = reading_topic("school-001", "cab-1", topic_prefix)
    group = f"g{uuid.uuid4().hex[:8]}"
    client_id = f"bk-ingest-test-{uuid.uuid4().hex[:8]}"
    pub = publisher(mqtt_url)
    try:
        w = _worker(db_url, mqtt_url, topic_prefix, group, client_id)
        for seq, t in enumerate(temps[:5]):
            info = pub.publish(
                topic, _reading(meal_end + timedelta(minutes=5 + seq), seq, t), qos=1
            )
        info.wait_for_publish(10)
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM sensor_readings") == 5, 15, what="half"
        )
        w.close()  # stopped mid-cycle; a new worker carries on from the committed state
        w = _worker(db_url, mqtt_url, topic_prefix, group, client_id)
        for seq, t in enumerate(temps):  # the gateway resends everything: duplicates
            info = pub.publish(
                topic, _reading(meal_end + timedelta(minutes=5 + seq), seq, t), qos=1
            )
        info.wait_for_publish(10)
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM disinfection_cycles") == 1, 15, what="cycle"
        )
        conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (now - timedelta(days=1),))
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM disinfection_checks") >= 2, 15, what="sweep"
        )
        w.close()
    finally:
        pub.loop_stop()

    [cycle] = conn.execute("SELECT verdict, held_s, peak_c FROM disinfection_cycles").fetchall()
    assert cycle == ("too_short", 360.0, 101.0)
    checks = conn.execute(
        "SELECT sensor_id, outcome FROM disinfection_checks WHERE meal_end = %s ORDER BY sensor_id",
        (meal_end,),
    ).fetchall()
    assert checks == [("cab-1", "failed"), ("cab-2", "missed")]

    process_findings(conn, now=utcnow(), settings=settings)
    tickets = conn.execute(
        "SELECT subject, rule, source, title, details FROM tickets ORDER BY subject"
    ).fetchall()
    assert [(t[0], t[1], t[2]) for t in tickets] == [
        ("cab-1", "disinfection_failed", "alarm"),
        ("cab-2", "disinfection_missed", "alarm"),
    ]
    # the two kinds have words of their own (the ledger's filter and the wall tell them apart)
    assert tickets[0][3].startswith("餐具消毒不达标 tableware disinfection cycle too cool")
    assert tickets[1][3].startswith("餐具未消毒 tableware not disinfected after the meal")
    curve = tickets[0][4]["payload"]["curve"]
    assert [p[1] for p in curve] == temps  # the temperature curve of the window, as evidence
    assert tickets[1][4]["payload"]["curve"] == []  # cab-2 sent nothing

    dispatch_due(conn, now=utcnow(), settings=settings, channels=channels)
    bodies = sorted(
        (r.body for r in hook.requests if r.path == "/hook/officer-1"), key=lambda b: b["rule"]
    )
    assert [(b["event"], b["rule"]) for b in bodies] == [
        ("ticket_opened", "disinfection_failed"),
        ("ticket_opened", "disinfection_missed"),
    ]
    assert "消毒柜 2" in bodies[1]["title"]
