"""The API's Prometheus metrics as a scrape sees them: latency by route, SLA breaches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.services.escalation import run_escalation
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import T0, insert_finding

pytestmark = pytest.mark.usefixtures("registry")


@pytest.fixture
def client(
    db_url: str, settings: ApiSettings, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as c:
        yield c


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Scrape /api/v1/metrics and index every sample by name and labels."""
    text = client.get("/api/v1/metrics").text
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:  # fmt: skip
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_request_latency_is_labelled_by_route_template(client: TestClient) -> None:
    before = _samples(client)
    key = {"method": "GET", "route": "/api/v1/tickets/{ticket_id}", "status": "404"}
    for ticket_id in (987654, 987655):  # two raw paths, one template
        assert client.get(f"/api/v1/tickets/{ticket_id}").status_code == 404
    assert client.get("/api/v1/healthz").status_code == 200
    after = _samples(client)
    assert (
        _value(after, "bk_api_request_seconds_count", **key)
        - _value(before, "bk_api_request_seconds_count", **key)
        == 2
    )
    health = {"method": "GET", "route": "/api/v1/healthz", "status": "200"}
    assert _value(after, "bk_api_request_seconds_count", **health) >= 1
    assert _value(after, "bk_api_request_seconds_bucket", le="+Inf", **key) >= 2
    assert not any("987654" in str(labels) for _, labels in after)


def test_every_answer_carries_the_apps_own_time(client: TestClient) -> None:
    for path, status in (("/api/v1/healthz", 200), ("/api/v1/tickets/987654", 404),
                         ("/api/v1/no-such-route", 404)):  # fmt: skip
        r = client.get(path)
        assert r.status_code == status
        timing = re.fullmatch(r"app;dur=(\d+\.\d)", r.headers["server-timing"])
        assert timing is not None, r.headers["server-timing"]
        assert 0 <= float(timing.group(1)) < 10_000


def test_sla_breach_counted_when_the_deadline_passes(
    client: TestClient, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    insert_finding(conn, key="alarm:sla", tier=2, notify=False)
    process_findings(conn, now=T0, settings=settings)
    row = conn.execute("SELECT due_at FROM tickets ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    before = _samples(client)
    run_escalation(conn, now=row[0] - timedelta(minutes=1), settings=settings)
    mid = _samples(client)
    run_escalation(conn, now=row[0] + timedelta(minutes=1), settings=settings)
    after = _samples(client)
    name = "bk_api_sla_breaches_total"
    assert _value(mid, name, tier="2") == _value(before, name, tier="2")
    assert _value(after, name, tier="2") - _value(before, name, tier="2") == 1
    steps = "bk_api_escalation_steps_total"
    assert _value(after, steps, step="warning") - _value(before, steps, step="warning") == 1
    opened = "bk_api_tickets_opened_total"
    assert _value(after, opened, tier="2") >= 1
