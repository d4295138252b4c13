"""``brightkitchen demo`` end to end: broker, ingest, API and simulator as real processes."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bkcommon.errors import ConfigError
from bkcommon.timeutil import utcnow
from brightkitchen.demo import Sink, check_ports, describe_alert, start_sink
from ingest.rules.offline import sweep_offline
from tests.brightkitchen.demo_support import count, running_demo
from tests.support.services import free_port, wait_until


@pytest.mark.slow
def test_demo_with_embedded_amqtt_opens_a_ticket_and_delivers_the_webhook(
    db_url: str, tmp_path: Path
) -> None:
    # The edge box in the demo has its own test (test_demo_edge.py).
    with running_demo(db_url, tmp_path, "--no-edge", "--speed", "120", "--duration", "170") as run:
        text = run.text
        assert "embedded amqtt" in text()
        assert f"http://127.0.0.1:{run.api_port}/api/v1/tickets" in text()
        wait_until(
            lambda: count(db_url, "SELECT count(*) FROM sensor_readings") > 100,
            60,
            what="readings stored",
        )
        # The failed fridge becomes an alarm, a ticket, and a webhook to the officer.
        wait_until(
            lambda: (
                any(  # the canteen and the fridge by name: the line carries no device id
                    "🔔" in line and "冷藏温度超标" in line and "冷藏柜 1 (模拟学校食堂 1" in line
                    for line in text().splitlines()
                )
                or run.proc.poll() is not None
            ),
            90,
            what="the officer's webhook for the failed fridge",
        )
        assert run.proc.poll() is None, text()
        assert (
            count(
                db_url,
                "SELECT count(*) FROM alarms WHERE rule = 'temp_high' "
                "AND sensor_id = 'demo-000-fridge-0'",
            )
            == 1
        )
        assert count(db_url, "SELECT count(*) FROM tickets") >= 1
        # The replayed lunch: the cabinet nobody ran becomes a 餐具未消毒 ticket.
        wait_until(
            lambda: (
                count(
                    db_url,
                    "SELECT count(*) FROM tickets WHERE rule = 'disinfection_missed' "
                    "AND subject = 'demo-site-000-cab-missed'",
                )
                == 1
            ),
            60,
            what="the missed disinfection ticket",
        )
        assert "disinfection: " in text()
        # The seeded workflows: a failed rapid test opens its ticket; a complaint waits in
        # the regulator's triage with a tracking page.
        wait_until(
            lambda: (
                count(
                    db_url,
                    "SELECT count(*) FROM tickets t JOIN rapid_tests r ON r.site_id = t.site_id "
                    "WHERE t.rule = 'rapid_test_failed' AND r.result = 'fail'",
                )
                == 1
            ),
            60,
            what="the failed rapid test's ticket",
        )
        assert count(db_url, "SELECT count(*) FROM complaints WHERE status = 'received'") == 1
        wait_until(
            lambda: (
                count(db_url, "SELECT count(*) FROM tickets WHERE rule = 'supervision_finding'")
                == 1
            ),
            60,
            what="the supervision visit's ticket",
        )
        assert "/public/complaints/" in text()
        assert "console" in text()
        # the printed sign-in list names the region's inspector, who exists with that role
        assert "the region's inspector: inspector / brightkitchen-demo" in text()
        inspectors = "SELECT count(*) FROM users WHERE role = 'inspector'"
        assert count(db_url, inspectors) == 1
        # and the canteens' officer (bound to the person the alerts go to) and their insurer,
        # who reads the liability policy of every canteen
        assert "food-safety officer: officer / brightkitchen-demo" in text()
        officer = "SELECT count(*) FROM users WHERE role = 'officer' AND person_id = 'demo-officer'"
        assert count(db_url, officer) == 1
        assert count(db_url, "SELECT count(*) FROM users WHERE role = 'insurer'") == 1
        assert count(db_url, "SELECT count(*) FROM policies") == 3
        _assert_the_duties_day(db_url, text)
        token = (run.data_dir / "api-token.txt").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{run.api_port}/api/v1/tickets",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
            assert b"demo-000-fridge-0" in resp.read()
    assert "readings stored" in text()
    assert run.proc.returncode == 0, text()
    # every site's lunch fell due for its samples 1-2 min in; only the unsampled one is a ticket
    assert count(db_url, "SELECT count(*) FROM tickets WHERE rule = 'food_sample_missed'") == 1
    # The simulator replays 90 minutes of history, so reading stamps are far older than the
    # default offline limit (10 min); the offline rule judges when readings arrive, so the
    # demo needs no raised limit and a sweep right now finds no sensor offline.
    stale = "SELECT count(*) FROM sensors WHERE last_reading_at < now() - interval '10 minutes'"
    assert count(db_url, stale) >= 1
    assert count(db_url, "SELECT count(*) FROM sensors WHERE last_received_at IS NULL") == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert sweep_offline(conn, utcnow()) == 0
    assert count(db_url, "SELECT count(*) FROM alarms WHERE rule = 'sensor_offline'") == 0
    # Every child is gone: nothing listens on the API port any more.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{run.api_port}/healthz", timeout=1)
        except OSError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the API outlived the demo")


def _assert_the_duties_day(db_url: str, text: Callable[[], str]) -> None:
    """Three canteens' day of duties: two daily checks done, one missed and escalated to the
    officer, then the director, then the 包保 cadre; one cook off duty; one lunch unsampled,
    which becomes a ticket."""
    assert count(db_url, "SELECT count(*) FROM daily_checks") == 2
    assert (
        count(
            db_url,
            "SELECT count(*) FROM daily_checks WHERE site_id IN ('demo-site-000', 'demo-site-001')",
        )
        == 2
    )
    assert count(db_url, "SELECT count(*) FROM health_checks") == 12
    assert (
        count(
            db_url,
            "SELECT count(*) FROM health_checks WHERE NOT on_duty "
            "AND site_id = 'demo-site-000' AND staff_name = '李阿姨'",
        )
        == 1
    )
    assert count(db_url, "SELECT count(*) FROM health_checks WHERE NOT on_duty") == 1
    meals = "SELECT count(DISTINCT meal) FROM food_samples WHERE site_id = '{}'"
    assert count(db_url, meals.format("demo-site-000")) == 2
    assert count(db_url, meals.format("demo-site-001")) == 1  # breakfast only: lunch missing
    assert "off duty today: 李阿姨 at demo-site-000" in text()
    assert "no sample retained: lunch at demo-site-001" in text()
    # ... which becomes its ticket once due (1-2 min in); the sites that sampled it get none
    unsampled = "SELECT count(*) FROM tickets WHERE rule = 'food_sample_missed' AND site_id = '{}'"
    wait_until(
        lambda: count(db_url, unsampled.format("demo-site-001")) == 1,
        150,
        what="the unsampled lunch's ticket",
    )
    assert "not done at demo-site-002" in text()
    # The missed check: one ticket, whose ladder reaches the director and then the cadre.
    missed = (
        "SELECT count(*) FROM tickets WHERE rule = 'daily_check_missed' "
        "AND site_id = 'demo-site-002'"
    )
    wait_until(lambda: count(db_url, missed) == 1, 90, what="the missed daily check's ticket")
    steps = (
        "SELECT count(*) FROM escalation_steps e JOIN tickets t ON t.id = e.ticket_id "
        "WHERE t.rule = 'daily_check_missed' AND e.step = '{}' AND e.notified > 0"
    )
    wait_until(lambda: count(db_url, steps.format("regulator")) == 1, 90, what="the cadre's step")
    assert count(db_url, steps.format("warning")) == 1
    with psycopg.connect(db_url) as conn:
        ticket_no = conn.execute(
            "SELECT ticket_no FROM tickets WHERE rule = 'daily_check_missed'"
        ).fetchone()
    assert ticket_no is not None

    def heard(path: str) -> list[int]:
        return [
            i
            for i, line in enumerate(text().splitlines())
            if "🔔" in line and ticket_no[0] in line and f"→ /hook/{path}" in line
        ]

    wait_until(lambda: bool(heard("cadre-1")), 30, what="the cadre's webhook")
    # Officer first, the director at the deadline, the 包保 cadre last.
    assert heard("officer-1")[0] < heard("director-1")[0] < heard("cadre-1")[0], text()
    assert count(db_url, "SELECT count(*) FROM tickets WHERE rule = 'daily_check_missed'") == 1


def test_webhook_sink_records_and_describes_alerts() -> None:
    port = free_port()
    sink = Sink(echo=False)
    srv = start_sink(port, sink)
    try:
        body = json.dumps({"ticket_no": "ZG-2026-000001", "title": "冷藏柜 1 温度超限"}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/hook/officer-1",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
    finally:
        srv.shutdown()
    assert len(sink.received) == 1
    assert sink.received[0]["path"] == "/hook/officer-1"
    assert describe_alert(sink.received[0]["payload"]) == (
        "ticket ZG-2026-000001 opened: 冷藏柜 1 温度超限"
    )
    full = {
        "ticket_no": "ZG-20261207-4",
        "event": "ticket_warning",
        "title": "冷藏温度超标 fridge over temperature limit: 冷藏柜 1",
        "site_id": "demo-site-000",
        "site_name": "模拟学校食堂 1",
        "subject": "demo-000-fridge-0",
    }
    assert describe_alert(full) == (  # the canteen by name, no device id
        "ticket ZG-20261207-4 warning: 冷藏温度超标 fridge over temperature limit: 冷藏柜 1 "
        "(模拟学校食堂 1)"
    )


def test_ports_the_demo_cannot_have_are_refused_before_anything_starts() -> None:
    port = free_port()
    with pytest.raises(ConfigError, match="both"):
        check_ports(port, port)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        taken = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"port {taken} .* in use.*--port"):
            check_ports(taken, free_port())
        with pytest.raises(ConfigError, match=rf"port {taken} .* in use.*--hook-port"):
            check_ports(free_port(), taken)
    finally:
        busy.close()
    check_ports(free_port(), free_port())
