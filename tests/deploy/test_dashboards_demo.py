"""The Grafana dashboards show the demo's data: every panel's query returns series.

``brightkitchen demo`` runs as a child process (embedded amqtt broker, this test's
database, its edge box on the rendered kitchen video) with the ingest worker's metrics
port set; Debian's ``prometheus`` scrapes it with the district's ``prometheus.yml`` and rule
files (targets moved to the demo's ports: the API, which runs the ticket workers in the
demo, ingest and the edge box found in its log). Then each ``expr`` of every panel in
deploy/compose/grafana/dashboards/*.json is evaluated through Prometheus' HTTP API and
must return at least one series. The demo has no faulty device, so the test publishes one
reading of an unregistered sensor, as a misconfigured gateway would, for the dead-letter
panel to have something to show.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.topics import reading_topic
from tests.brightkitchen.demo_support import running_demo
from tests.deploy.stack import COMPOSE, SBIN_PATH
from tests.support.services import free_port, port_open, wait_until

PROMETHEUS = shutil.which("prometheus", path=SBIN_PATH)
DASHBOARDS = sorted((COMPOSE / "grafana/dashboards").glob("*.json"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="needs prometheus (scripts/system-deps.sh)"),
]


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every target of every panel."""
    return [
        (path.name, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def prometheus_config(work: Path, api: int, ingest: int, edge: int, prom: int) -> Path:
    """The compose prometheus.yml with its targets moved to the demo's processes."""
    cfg = yaml.safe_load((COMPOSE / "prometheus/prometheus.yml").read_text())
    cfg["global"]["scrape_interval"] = "1s"
    cfg["global"]["evaluation_interval"] = "1s"
    cfg["rule_files"] = [str(COMPOSE / "prometheus/rules/*.yml")]
    moved = {"localhost:9090": f"127.0.0.1:{prom}", "api:8000": f"127.0.0.1:{api}",
             "ingest:9101": f"127.0.0.1:{ingest}"}  # fmt: skip
    jobs = []
    for job in cfg["scrape_configs"]:
        if job["job_name"] == "workers":
            continue  # the demo's API process runs the ticket workers: its /metrics has them
        for static in job.get("static_configs", []):
            static["targets"] = [moved[t] for t in static["targets"]]
        for sd in job.get("file_sd_configs", []):
            boxes = work / "edge-boxes.yml"
            boxes.write_text(yaml.safe_dump([{"targets": [f"127.0.0.1:{edge}"]}]))
            sd["files"] = [str(boxes)]
        jobs.append(job)
    cfg["scrape_configs"] = jobs
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _query(prom: int, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"http://127.0.0.1:{prom}/api/v1/query", params={"query": expr}, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _publish_unknown_sensor(mqtt_url: str, site_id: str) -> None:
    host, port = re.fullmatch(r"mqtt://([\d.]+):(\d+)", mqtt_url).groups()  # type: ignore[union-attr]
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bk-test-faulty-gateway")
    c.connect(host, int(port))
    c.loop_start()
    try:
        body = {"schema_version": 1, "ts": "2026-01-01T00:00:00Z", "seq": 1, "temp_c": 4.0}
        info = c.publish(reading_topic(site_id, "not-registered"), json.dumps(body), qos=1)
        info.wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def test_every_dashboard_panel_returns_series_from_the_running_demo(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert PROMETHEUS is not None
    queries = panel_queries()
    assert len(queries) >= 20
    ingest_port, prom_port = free_port(), free_port()
    monkeypatch.setenv("BK_INGEST_METRICS_PORT", str(ingest_port))  # the demo's children inherit
    with running_demo(db_url, tmp_path, "--sites", "1") as run:
        text = run.text()
        broker = re.search(r"broker: embedded amqtt (mqtt://[\d.]+:\d+)", text)
        assert broker is not None, text
        edge_log = run.data_dir / "logs/edge.log"

        def edge_port() -> int | None:
            found = re.search(
                r"metrics on http://[\d.]+:(\d+)/metrics",
                edge_log.read_text(errors="replace") if edge_log.exists() else "",
            )
            return int(found.group(1)) if found else None

        wait_until(lambda: edge_port() is not None, 120, 0.5, what="the edge box's metrics")
        edge = edge_port()
        assert edge is not None
        site = yaml.safe_load((run.data_dir / "site.yaml").read_text())["sites"][0]["id"]
        _publish_unknown_sensor(broker.group(1), str(site))

        conf = prometheus_config(tmp_path, run.api_port, ingest_port, edge, prom_port)
        with (tmp_path / "prometheus.log").open("wb") as log:
            prom = subprocess.Popen(
                [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(lambda: port_open("127.0.0.1", prom_port), 60, 0.3, what="prometheus")

            def targets_up() -> bool:
                r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/targets", timeout=5).json()
                active = r["data"]["activeTargets"]
                return {t["labels"]["job"] for t in active} == {
                    "prometheus", "api", "ingest", "edge",
                } and all(t["health"] == "up" for t in active)  # fmt: skip

            wait_until(targets_up, 60, 0.5, what="every demo target up")

            empty: list[tuple[str, str, str]] = []

            def all_return_series() -> bool:
                empty[:] = [q for q in queries if not _query(prom_port, q[2])]
                return not empty

            try:
                wait_until(all_return_series, 150, 2.0, what="every panel to show data")
            except AssertionError:
                pytest.fail(
                    "panels without data: "
                    + "; ".join(f"{b} / {t}: {e}" for b, t, e in empty)
                    + "\n"
                    + (tmp_path / "prometheus.log").read_text()[-2000:]
                )
            # The data is the demo's: its readings, its ticket, its edge box's camera.
            assert float(_query(prom_port, "sum(bk_ingest_inserted_total)")[0]["value"][1]) > 0
            opened = _query(prom_port, "sum(bk_api_tickets_opened_total)")
            assert float(opened[0]["value"][1]) >= 1
            cams = {s["metric"]["camera_id"] for s in _query(prom_port, "edge_camera_online")}
            assert cams
            dead = _query(prom_port, "bk_ingest_dead_letters_total")
            assert {s["metric"]["reason"] for s in dead} == {"unknown_sensor"}
        finally:
            prom.terminate()
            prom.wait(20)
