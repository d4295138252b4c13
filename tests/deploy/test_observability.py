"""Alert rules, dashboards and the metric names they use match what the services expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import api.metrics
from bkcommon.settings import CommonSettings
from edge.metrics import EdgeMetrics
from ingest.settings import IngestSettings
from ingest.worker import IngestWorker, _serve_metrics
from tests.deploy.stack import COMPOSE, SBIN_PATH
from tests.support.services import REPO

RULES = COMPOSE / "prometheus/rules/brightkitchen.yml"
DASHBOARDS = sorted((COMPOSE / "grafana/dashboards").glob("*.json"))
OPERATIONS = REPO / "docs/operations.md"
_NAME = re.compile(r"\b((?:bk|edge)_[a-z0-9_]*[a-z0-9])(?![\w*])")
_SUFFIXES = ("_bucket", "_count", "_sum")


def _base(name: str) -> str:
    for s in _SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def _family_names(families: Iterable[Metric]) -> set[str]:
    """Names as PromQL sees them: counters with ``_total``, histograms by family name."""
    return {f"{f.name}_total" if f.type == "counter" else f.name for f in families}


def _exposed() -> set[str]:
    """Metric names of the API and ticket workers, an ingest worker and an edge box."""
    api_metrics = [m for m in vars(api.metrics).values() if isinstance(m, MetricWrapperBase)]
    names = _family_names(f for m in api_metrics for f in m.collect())
    names |= _family_names(EdgeMetrics().registry.collect())
    worker = IngestWorker(CommonSettings(database_url="postgresql://unused/x"), IngestSettings())
    worker.stats.dead["bad_json"] += 1  # a family without samples is not written
    worker.broker_dropped = 0  # written once the broker has given its count
    server = _serve_metrics(worker, 0, addr="127.0.0.1")
    try:
        port = server.server_address[1]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    names |= _family_names(text_string_to_metric_families(text))
    return {n for n in names if n.startswith(("bk_", "edge_"))}


def _exprs() -> list[str]:
    out = [
        str(rule["expr"])
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    for path in DASHBOARDS:
        out += [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p["targets"]]
    return out


def test_every_metric_in_rules_and_dashboards_is_exposed_and_documented() -> None:
    exposed = _exposed()
    used = {_base(n) for e in _exprs() for n in _NAME.findall(e)}
    assert used, "no metric found in the rules and dashboards"
    assert used - exposed == set(), "rules or dashboards use metrics no service exposes"
    documented = {_base(n) for n in _NAME.findall(OPERATIONS.read_text())}
    assert exposed - documented == set(), "docs/operations.md misses these metrics"
    assert documented - exposed == set(), "docs/operations.md lists metrics that do not exist"


def test_dashboards_are_provisionable() -> None:
    ds = yaml.safe_load((COMPOSE / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    uids = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.append(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            assert all(t["expr"].strip() for t in panel["targets"])
    assert len(uids) == len(set(uids)) >= 2
    prov = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/dashboards/brightkitchen.yml").read_text()
    )
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.skipif(shutil.which("promtool", path=SBIN_PATH) is None, reason="needs promtool")
def test_rules_check_and_unit_tests_pass(tmp_path: Path) -> None:
    promtool = shutil.which("promtool", path=SBIN_PATH)
    assert promtool is not None
    check = subprocess.run([promtool, "check", "rules", str(RULES)],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    spec = (Path(__file__).parent / "alert_rules_test.yml").read_text()
    assert "  - RULES\n" in spec
    unit = tmp_path / "rules_test.yml"
    unit.write_text(spec.replace("  - RULES\n", f"  - {RULES}\n"))
    done = subprocess.run([promtool, "test", "rules", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_grafana_provisioning_matches_the_compose_services() -> None:
    """Grafana finds its datasource and dashboards where compose mounts them, and the
    datasource is the compose Prometheus; every dashboard queries that datasource."""
    services = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    prov = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/dashboards/brightkitchen.yml").read_text()
    )
    assert mounts["./grafana/dashboards"] == prov["providers"][0]["options"]["path"]
    assert prov["providers"][0]["type"] == "file"
    ds = yaml.safe_load((COMPOSE / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    assert any(str(p).endswith(":9090") for p in services["prometheus"]["ports"])
    assert "prometheus" in services["grafana"]["depends_on"]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert {p["datasource"]["uid"] for p in board["panels"]} == {source["uid"]}, path.name
