"""``brightkitchen demo`` end to end: broker, ingest, API and simulator as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from brightkitchen.demo import Sink, describe_alert, start_sink
from tests.support.services import REPO, free_port, wait_until


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_demo_with_embedded_amqtt_opens_a_ticket_and_delivers_the_webhook(
    db_url: str, tmp_path: Path
) -> None:
    api_port, hook_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "BK_MQTT_URL"}
    env.update({"BK_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"})
    out = (tmp_path / "demo.out").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brightkitchen.cli",
            "demo",
            "--broker",
            "amqtt",
            "--no-edge",  # the edge box in the demo has its own test (test_demo_edge.py)
            "--port",
            str(api_port),
            "--hook-port",
            str(hook_port),
            "--speed",
            "120",
            "--duration",
            "110",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )

    def text() -> str:
        return (tmp_path / "demo.out").read_text()

    try:
        wait_until(
            lambda: "demo is running" in text() or proc.poll() is not None,
            60,
            what="the demo to start",
        )
        assert proc.poll() is None, text()
        assert "embedded amqtt" in text()
        assert f"http://127.0.0.1:{api_port}/api/v1/tickets" in text()
        wait_until(
            lambda: _count(db_url, "SELECT count(*) FROM sensor_readings") > 100,
            60,
            what="readings stored",
        )
        # The failed fridge becomes an alarm, a ticket, and a webhook to the officer.
        wait_until(
            lambda: (
                "demo-000-fridge-0" in "".join(line for line in text().splitlines() if "🔔" in line)
                or proc.poll() is not None
            ),
            90,
            what="the officer's webhook for the failed fridge",
        )
        assert proc.poll() is None, text()
        assert (
            _count(
                db_url,
                "SELECT count(*) FROM alarms WHERE rule = 'temp_high' "
                "AND sensor_id = 'demo-000-fridge-0'",
            )
            == 1
        )
        assert _count(db_url, "SELECT count(*) FROM tickets") >= 1
        assert "console" in text()
        token = (tmp_path / "demo" / "api-token.txt").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/api/v1/tickets",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
            assert b"demo-000-fridge-0" in resp.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    out.close()
    assert "readings stored" in text()
    assert proc.returncode == 0, text()
    # Every child is gone: nothing listens on the API port any more.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=1)
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
