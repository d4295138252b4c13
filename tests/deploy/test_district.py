"""The district of deploy/compose comes up healthy together (from Debian packages).

PostgreSQL, Mosquitto and Prometheus run as the compose services configure them, plus
``brightkitchen api run``, ``api worker`` and ``ingest run``. Healthy means: the API's
health check answers, every Prometheus target is ``up == 1``, the shipped rule groups are
loaded without error, every dashboard query runs, and a reading published by a device
account (issued while the broker runs and rendered by ``registry mqtt-auth write``, as the
``mqtt-auth`` service does) goes through the broker and ingest into the database and shows
in Prometheus; an anonymous client is refused.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.topics import reading_topic
from tests.deploy.stack import COMPOSE, Stack, missing_tools
from tests.support.services import port_open, wait_until

pytestmark = pytest.mark.skipif(
    bool(missing_tools()), reason=f"needs {missing_tools()} (scripts/system-deps.sh)"
)

SITE = {
    "version": 1,
    "regions": [{"id": "r1", "name": "District"}],
    "sites": [
        {
            "id": "site-a",
            "name": "Canteen A",
            "region": "r1",
            "sensors": [{"id": "fridge-1", "profile": "fridge"}],
            "edge_boxes": [{"id": "box-a", "cameras": [{"id": "cam-a", "url": "rtsp://x/1"}]}],
        }
    ],
}


@pytest.fixture
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="bk-district-"))
    work.chmod(0o755)  # the broker and PostgreSQL drop to their own users
    s = Stack(work)
    try:
        yield s
    finally:
        s.close()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _mqtt_client(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, int]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    if user is not None:
        c.username_pw_set(user, password)
    codes: list[int] = []
    c.on_connect = lambda cl, ud, flags, rc, props=None: codes.append(int(rc.value))
    c.connect("127.0.0.1", port)
    c.loop_start()
    wait_until(lambda: bool(codes), 10, what="CONNACK")
    return c, codes[0]


def _query(prom: int, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"http://127.0.0.1:{prom}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def test_district_services_come_up_healthy_together(stack: Stack) -> None:
    work = stack.work
    pg_port = stack.start_postgres()
    admin = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE brightkitchen")
    db_url = f"postgresql://postgres@127.0.0.1:{pg_port}/brightkitchen"
    (work / "site.yaml").write_text(yaml.safe_dump(SITE))
    secret = "ingest-" + uuid.uuid4().hex
    mqtt_port, devices = stack.start_mosquitto({"MQTT_INGEST_PASSWORD": secret})
    base_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "BK_DATABASE_URL": db_url,
        "BK_MQTT_PREFIX": "bk/v1",
        "BK_SITE_FILE": str(work / "site.yaml"),
        "BK_LOG_FORMAT": "json",
    }
    # the compose `migrate` service
    for args in (["db", "migrate"], ["registry", "sync", "--config", str(work / "site.yaml")]):
        done = subprocess.run(
            [sys.executable, "-m", "brightkitchen.cli", *args],
            env=base_env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    api_port, worker_port, ingest_port = stack.port(), stack.port(), stack.port()
    stack.brightkitchen(
        "api",
        ["api", "run", "--host", "127.0.0.1", "--port", str(api_port), "--no-workers"],
        {**base_env, "BK_API_SECRET_KEY": uuid.uuid4().hex},
    )
    stack.brightkitchen(
        "workers",
        ["api", "worker"],
        {**base_env, "BK_API_HOST": "127.0.0.1", "BK_API_WORKER_METRICS_PORT": str(worker_port),
         "BK_API_SECRET_KEY": uuid.uuid4().hex},
    )  # fmt: skip
    stack.brightkitchen(
        "ingest",
        ["ingest", "run"],
        {**base_env, "BK_MQTT_URL": f"mqtt://ingest:{secret}@127.0.0.1:{mqtt_port}",
         "BK_INGEST_CLIENT_ID": "bk-ingest-1", "BK_INGEST_METRICS_PORT": str(ingest_port)},
    )  # fmt: skip
    prom = stack.start_prometheus(
        {
            "api:8000": f"127.0.0.1:{api_port}",
            "workers:9102": f"127.0.0.1:{worker_port}",
            "ingest:9101": f"127.0.0.1:{ingest_port}",
        }
    )

    def api_healthy() -> bool:
        try:
            r = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json()["database"] is True

    stack.wait(api_healthy, 120, "API health", "api")

    def all_up() -> bool:
        r = httpx.get(f"http://127.0.0.1:{prom}/api/v1/targets", timeout=5).json()
        targets = r["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        return jobs == {"prometheus", "api", "workers", "ingest"} and all(
            t["health"] == "up" for t in targets
        )

    stack.wait(all_up, 120, "every target up", "workers", "ingest", "prometheus")
    up = _query(prom, "up")
    assert sorted(s["metric"]["job"] for s in up) == ["api", "ingest", "prometheus", "workers"]
    assert all(s["value"][1] == "1" for s in up)

    rules = httpx.get(f"http://127.0.0.1:{prom}/api/v1/rules", timeout=5).json()["data"]
    groups = {g["name"]: g for g in rules["groups"]}
    assert set(groups) == {"brightkitchen.recording", "brightkitchen.alerts"}
    alerts = {r["name"] for r in groups["brightkitchen.alerts"]["rules"]}
    for required in ("BkIngestStopped", "BkDeadLettersRising", "BkCameraOffline",
                     "BkAlertDeliveryFailing"):  # fmt: skip
        assert required in alerts
    wait_until(
        lambda: all(
            r.get("health") == "ok"
            for g in httpx.get(f"http://127.0.0.1:{prom}/api/v1/rules", timeout=5).json()[
                "data"
            ]["groups"]
            for r in g["rules"]
        ),
        60, 0.5, what="every rule evaluated without error",
    )  # fmt: skip

    # The ingest account may publish the gap guard's markers, so the guard leaves gap mode
    # (else every message is written twice), and may read the broker's dropped count.
    def ingest_metric(name: str) -> str | None:
        text = httpx.get(f"http://127.0.0.1:{ingest_port}/metrics", timeout=5).text
        found = [ln.split()[-1] for ln in text.splitlines() if ln.startswith(name + " ")]
        return found[0] if found else None

    def guard_idle() -> bool:  # a marker of the group reached the guard after its probe
        return "guard idle after writing" in (work / "ingest.log").read_text(errors="replace")

    stack.wait(guard_idle, 60, "the gap guard idle", "ingest")
    assert ingest_metric("bk_ingest_guard_gap") == "0.0"
    stack.wait(
        lambda: ingest_metric("bk_ingest_broker_dropped_messages_total") == "0.0",
        30, "the broker's dropped count", "ingest",
    )  # fmt: skip

    # Every dashboard panel's query runs on this Prometheus (PromQL valid, names resolve).
    for board in sorted((COMPOSE / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                r = httpx.get(f"http://127.0.0.1:{prom}/api/v1/query",
                              params={"query": target["expr"]}, timeout=5)  # fmt: skip
                assert r.status_code == 200, (board.name, panel["title"], r.text)
                assert r.json()["status"] == "success"

    # The broker's persistence directory and auth files belong to the broker user.
    if os.geteuid() == 0:
        broker_uid = pwd.getpwnam("mosquitto").pw_uid
        assert (work / "data").stat().st_uid == broker_uid
        for name in ("passwd", "acl"):
            st = (work / "auth" / name).stat()
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (broker_uid, 0o600)

    # No anonymous client: the broker wants the accounts gen-auth.sh wrote.
    anon, rc = _mqtt_client(mqtt_port, None, None)
    anon.loop_stop()
    assert rc != 0

    # The site's gateway gets its account as an operator issues it, and the files are
    # rendered as the compose `mqtt-auth` service does; run.sh merges them and reloads
    # Mosquitto (SIGHUP) without restarting it.
    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "brightkitchen.cli", *args],
            env=base_env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    gw_password = cli("registry", "mqtt-auth", "issue", "gateway", "site-a")
    passwd, acl = str(devices / "devices.passwd"), str(devices / "devices.acl")
    cli("registry", "mqtt-auth", "write", "--mode", "644", "--passwd", passwd, "--acl", acl)

    def gateway_accepted() -> bool:
        c, code = _mqtt_client(mqtt_port, "gw.site-a", gw_password)
        if code != 0:
            c.loop_stop()
            return False
        ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        body = {"schema_version": 1, "ts": ts, "seq": 1, "temp_c": 4.5}
        c.publish(reading_topic("site-a", "fridge-1"), json.dumps(body), qos=1).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
        return True

    stack.wait(gateway_accepted, 60, "the gateway account", "mosquitto")

    def stored() -> bool:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM sensor_readings WHERE sensor_id = 'fridge-1'"
            ).fetchone()
        return row is not None and int(row[0]) >= 1

    stack.wait(stored, 60, "the reading in the database", "ingest")
    wait_until(
        lambda: any(float(s["value"][1]) >= 1 for s in _query(prom, "bk_ingest_inserted_total")),
        60, 0.5, what="Prometheus to see the reading",
    )  # fmt: skip
    assert port_open("127.0.0.1", mqtt_port)
