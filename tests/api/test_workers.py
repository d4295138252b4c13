"""End to end: the app's lifespan workers turn a NOTIFY'd finding into a delivered webhook."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.tickets import FINDINGS_CHANNEL
from api.settings import ApiSettings
from api.workers import ListenWorker
from bkcommon.settings import CommonSettings
from tests.api.conftest import HookServer, SmtpServer, insert_finding
from tests.support.services import wait_until

pytestmark = pytest.mark.usefixtures("registry")


def test_notified_finding_reaches_the_webhook_within_2_s(
    db_url: str,
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    hook: HookServer,
    smtp: SmtpServer,
    admin_headers: dict[str, str],
) -> None:
    # Polling slower than the deadline proves the NOTIFY, not the poll, woke the workers.
    live = settings.model_copy(update={"workers_enabled": True, "poll_interval_s": 30.0})
    app = create_app(live, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as client:
        assert app.state.workers.wait_connected(10)
        latencies = []
        for i, sensor in enumerate(["fridge-1", "freezer-1", "cam-1"]):
            t0 = time.monotonic()
            insert_finding(conn, key=f"alarm:{i}:raised", subject=sensor)
            wait_until(
                lambda n=i + 1: len(hook.requests) >= n, timeout=2.0, what="webhook delivery"
            )
            latencies.append(time.monotonic() - t0)
        wait_until(lambda: len(smtp.messages) == 3, timeout=2.0, what="e-mails")
        tickets = client.get("/api/v1/tickets").json()
        assert tickets["count"] == 3
        sent = client.get("/api/v1/notifications", params={"status": "sent"}).json()
        assert sent["count"] == 6
    assert {r.body["subject"] for r in hook.requests} == {"fridge-1", "freezer-1", "cam-1"}
    print(
        f"finding → webhook latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert not app.state.workers.engine.is_alive()  # stopped with the app


def test_worker_polls_and_reconnects_after_losing_its_connections(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    calls: list[int] = []
    stop = threading.Event()

    def step(c: psycopg.Connection[Any]) -> int:
        calls.append(1)
        return 0

    worker = ListenWorker(
        name="test-worker",
        database_url=db_url,
        channels=(FINDINGS_CHANNEL,),
        step=step,
        poll_interval_s=0.3,
        stop_event=stop,
    )
    worker.start()
    try:
        assert worker.connected.wait(5)
        wait_until(lambda: len(calls) >= 3, timeout=3, what="polls without NOTIFY")
        # Kill the worker's sessions from the server side.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        wait_until(lambda: not worker.connected.is_set(), timeout=3, what="disconnect noticed")
        wait_until(worker.connected.is_set, timeout=5, what="reconnect")
        n = len(calls)
        conn.execute("SELECT pg_notify(%s, 'x')", (FINDINGS_CHANNEL,))
        wait_until(lambda: len(calls) > n, timeout=1, what="wake on NOTIFY after reconnect")
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()
