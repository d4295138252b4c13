"""``brightkitchen demo`` end to end: broker, ingest, API and simulator as real processes."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from bkcommon.timeutil import utcnow
from brightkitchen.demo import Sink, describe_alert, start_sink
from ingest.rules.offline import sweep_offline
from tests.brightkitchen.demo_support import count, running_demo
from tests.support.services import free_port, wait_until


@pytest.mark.slow
def test_demo_with_embedded_amqtt_opens_a_ticket_and_delivers_the_webhook(
    db_url: str, tmp_path: Path
) -> None:
    # The edge box in the demo has its own test (test_demo_edge.py).
    with running_demo(db_url, tmp_path, "--no-edge", "--speed", "120", "--duration", "110") as run:
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
                "demo-000-fridge-0" in "".join(line for line in text().splitlines() if "🔔" in line)
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
        # The replayed lunch: the cabinet nobody ran becomes a 餐具消毒不到位 ticket.
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
