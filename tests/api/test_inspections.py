"""Inspections over HTTP: failed items open tickets on the notice; follow-ups close them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.inspection_plan import weighted_sample
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.conftest import T0, make_user_token
from tests.support.images import small_png

pytestmark = pytest.mark.usefixtures("registry")

TEMPLATE = {
    "name": "学校食堂日常检查",
    "kind": "routine",
    "items": [
        {"code": "c1", "text_zh": "冷藏柜温度记录完整", "text_en": "fridge log complete"},
        {
            "code": "c2",
            "text_zh": "无鼠患痕迹",
            "text_en": "no sign of pests",
            "tier": 1,
            "rule": "pest",
        },
        {"code": "c3", "text_zh": "留样 ≥125 g 48 h", "text_en": "samples kept", "tier": 3},
    ],
}


@pytest.fixture
def app_settings(settings: ApiSettings, tmp_path: Path) -> ApiSettings:
    return settings.model_copy(update={"evidence_dir": tmp_path / "evidence"})


@pytest.fixture
def client(
    db_url: str, app_settings: ApiSettings, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as c:
        yield c


def _inspect(client: TestClient, results: dict[str, str], **extra: Any) -> dict[str, Any]:
    tpl = client.post("/api/v1/checklist-templates", json=TEMPLATE).json()
    body = {
        "site_id": "school-001",
        "kind": "routine",
        "template_id": tpl["id"],
        "inspectors": ["张检查", "刘监管"],
        "started_at": T0.isoformat(),
        "finished_at": (T0 + timedelta(hours=1)).isoformat(),
        "items": [{"code": c, "result": r, "note": f"{c} {r}"} for c, r in results.items()],
        **extra,
    }
    r = client.post("/api/v1/inspections", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_failed_items_open_tickets_listed_on_the_signed_notice_and_closed_by_follow_up(
    client: TestClient, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    first = _inspect(client, {"c1": "fail", "c2": "fail", "c3": "pass"})
    assert [i["ticket_id"] for i in first["items"]] == [None, None, None]  # engine not run yet
    assert process_findings(conn, now=utcnow(), settings=app_settings) == 2

    insp = client.get(f"/api/v1/inspections/{first['id']}").json()
    items = {i["code"]: i for i in insp["items"]}
    assert items["c3"]["ticket_id"] is None
    assert items["c2"]["rule"] == "pest"
    assert items["c1"]["rule"] == "inspection_c1"
    tickets = {
        c: client.get(f"/api/v1/tickets/{items[c]['ticket_id']}").json() for c in ("c1", "c2")
    }
    assert {t["source"] for t in tickets.values()} == {"inspection"}
    assert tickets["c2"]["tier"] == 1
    assert tickets["c1"]["tier"] == 2
    assert tickets["c1"]["subject"] == "inspection-item:c1"
    # an item without a rule of its own names its number and its text, never an id
    text_zh = next(i["text_zh"] for i in TEMPLATE["items"] if i["code"] == "c1")
    assert tickets["c1"]["title"].startswith("监督检查不合格（C1） inspection item C1 failed: ")
    assert tickets["c1"]["title"].endswith(f": {text_zh}")
    assert items["c1"]["due_at"] is not None

    photo = client.post(
        f"/api/v1/inspections/{first['id']}/photos",
        params={"item_code": "c1"},
        content=small_png(),
        headers={"Content-Type": "image/png"},
    )
    assert photo.status_code == 201, photo.text
    sha = photo.json()["sha256"]
    assert (app_settings.evidence_dir / sha[:2] / sha[2:4] / sha).is_file()
    bad = client.post(f"/api/v1/inspections/{first['id']}/photos", content=b"not an image")
    assert bad.status_code == 415

    text = client.get(f"/api/v1/inspections/{first['id']}/notice", params={"format": "text"}).text
    assert "整改通知书" in text
    assert "未签署" in text
    assert "王食安" in text
    assert tickets["c1"]["ticket_no"] in text
    assert tickets["c2"]["ticket_no"] in text
    assert f"sha256:{sha[:12]}" in text
    assert "[c3]" not in text  # passed items are not on the notice
    assert "school-001" not in text  # the canteen by its name; the id is for machines

    signed = client.post(f"/api/v1/inspections/{first['id']}/sign", json={"signed_by": "刘监管"})
    assert signed.status_code == 200, signed.text
    notice_no = signed.json()["notice_no"]
    assert notice_no.startswith("ZGTZ-")
    again = client.post(f"/api/v1/inspections/{first['id']}/sign", json={})
    assert again.status_code == 409
    html = client.get(f"/api/v1/inspections/{first['id']}/notice")
    assert html.headers["content-type"].startswith("text/html")
    assert notice_no in html.text
    assert "刘监管" in html.text
    assert "王食安" in html.text
    assert "school-001" not in html.text

    follow = _inspect(
        client, {"c1": "pass", "c2": "fail"}, follow_up_of=first["id"], kind="routine"
    )
    assert follow["verified_ticket_ids"] == [items["c1"]["ticket_id"]]
    closed = client.get(f"/api/v1/tickets/{items['c1']['ticket_id']}").json()
    assert closed["status"] == "closed"
    assert closed["events"][-1]["note"] == f"verified by inspection {follow['id']}"
    process_findings(conn, now=utcnow(), settings=app_settings)
    still = client.get(f"/api/v1/tickets/{items['c2']['ticket_id']}").json()
    assert still["status"] != "closed"
    assert still["occurrences"] == 2

    listed = client.get("/api/v1/inspections", params={"site_id": "school-001"}).json()
    assert [(i["id"], i["failed"]) for i in listed] == [(follow["id"], 1), (first["id"], 2)]


def test_inspection_photos_are_served_to_those_who_see_the_inspection(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    first = _inspect(client, {"c1": "fail", "c2": "pass", "c3": "pass"})
    png = small_png()
    photo = client.post(
        f"/api/v1/inspections/{first['id']}/photos",
        content=png,
        headers={"Content-Type": "image/png"},
    )
    assert photo.status_code == 201, photo.text
    path = f"/api/v1/evidence/{photo.json()['sha256']}"
    got = client.get(path)  # admin
    assert got.status_code == 200
    assert got.content == png
    assert got.headers["content-type"] == "image/png"
    own = make_user_token(conn, username="wang", role="officer", site_ids=("school-001",))
    other = make_user_token(conn, username="li", role="officer", site_ids=("school-002",))
    anon = TestClient(client.app)
    assert anon.get(path, headers={"Authorization": f"Bearer {own}"}).content == png
    assert anon.get(path, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert anon.get(path).status_code == 401


def test_inspection_input_is_checked_and_insurers_may_not_write(
    client: TestClient, conn: psycopg.Connection[Any], db_url: str, app_settings: ApiSettings
) -> None:
    tpl = client.post("/api/v1/checklist-templates", json=TEMPLATE).json()
    base = {
        "site_id": "school-001",
        "kind": "special",
        "template_id": tpl["id"],
        "inspectors": ["x"],
        "started_at": T0.isoformat(),
        "items": [{"code": "zz", "result": "fail"}],
    }
    assert client.post("/api/v1/inspections", json=base).status_code == 422  # not in template
    assert client.post("/api/v1/inspections", json={**base, "kind": "nonsense"}).status_code == 422
    unknown = {**base, "site_id": "nope", "items": [{"code": "c1", "result": "fail"}]}
    assert client.post("/api/v1/inspections", json=unknown).status_code == 404
    dup = {**base, "items": [{"code": "c1", "result": "fail"}, {"code": "c1", "result": "pass"}]}
    assert client.post("/api/v1/inspections", json=dup).status_code == 422
    ok = {**base, "items": [{"code": "c3", "result": "pass"}]}
    created = client.post("/api/v1/inspections", json=ok).json()
    assert client.post(f"/api/v1/inspections/{created['id']}/sign", json={}).status_code == 409

    token = make_user_token(conn, username="ins", role="insurer", insurer="PICC")
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as insurer:
        assert insurer.post("/api/v1/inspections", json=ok).status_code == 403
        assert insurer.post("/api/v1/checklist-templates", json=TEMPLATE).status_code == 403
        # No policy with PICC: the inspection is outside the insurer's sites.
        assert insurer.get(f"/api/v1/inspections/{created['id']}").status_code == 404


def test_weighted_sample_is_reproducible_without_replacement_and_follows_weights() -> None:
    weights = [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]
    assert weighted_sample(weights, 3, seed=42) == weighted_sample(weights[::-1], 3, seed=42)
    assert len(set(weighted_sample(weights, 4, seed=7))) == 4
    assert weighted_sample(weights, 10, seed=7) == weighted_sample(weights, 4, seed=7)
    draws = 20_000
    first = Counter(weighted_sample(weights, 1, seed=s)[0] for s in range(draws))
    for key, w in weights:
        expected = draws * w / 10.0
        # 4 standard deviations of a binomial count: fails by chance about once in 15,000 runs
        # (and never, for these fixed seeds).
        sd = (draws * (w / 10) * (1 - w / 10)) ** 0.5
        assert abs(first[key] - expected) < 4 * sd, (key, first[key], expected)
    with pytest.raises(ValueError, match="positive"):
        weighted_sample([("a", 0.0)], 1, seed=1)


def test_plan_draws_by_latest_risk_score_with_the_same_list_for_the_same_seed(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("INSERT INTO regions (id, name, parent_id) VALUES ('d2', '子区', 'd1')")
    for i in range(20):
        conn.execute(
            "INSERT INTO sites (id, region_id, name) VALUES (%s, %s, %s)",
            (f"s{i:02d}", "d2" if i % 2 else "d1", f"食堂 {i}"),
        )
    # s00 was risky once and is fine now: only the latest score counts.
    conn.execute(
        """INSERT INTO risk_scores (site_id, computed_at, score, components) VALUES
           ('s00', %(old)s, 100, '{}'), ('s00', %(now)s, 0, '{}'), ('s01', %(now)s, 99, '{}')""",
        {"old": T0, "now": T0 + timedelta(days=1)},
    )
    plan = client.post("/api/v1/inspections/plan", json={"n": 5, "seed": 2026})
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["eligible"] == 22
    assert len(body["sites"]) == 5
    again = client.post("/api/v1/inspections/plan", json={"n": 5, "seed": 2026}).json()
    assert again == body
    weights = {s["site_id"]: s["weight"] for s in body["sites"]}
    assert weights.get("s00", 1.0) == 1.0
    assert weights.get("s01", 100.0) == 100.0

    picks = Counter(
        client.post("/api/v1/inspections/plan", json={"n": 1, "seed": s}).json()["sites"][0][
            "site_id"
        ]
        for s in range(300)
    )
    # s01 weighs 100 of a total 100 + 21 × 1: about 83 % of first draws.
    assert 0.7 < picks["s01"] / 300 < 0.95

    sub = client.post(
        "/api/v1/inspections/plan", json={"region_id": "d2", "n": 50, "seed": 1}
    ).json()
    assert sub["eligible"] == 10
    assert {s["region_id"] for s in sub["sites"]} == {"d2"}


def test_the_standard_checklist_is_created_once_and_inspects(
    client: TestClient, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    officer = make_user_token(conn, username="off-std", role="officer", site_ids=("school-001",))
    refused = client.post(
        "/api/v1/checklist-templates/standard", headers={"Authorization": f"Bearer {officer}"}
    )
    assert refused.status_code == 403
    made = client.post("/api/v1/checklist-templates/standard")
    assert made.status_code == 201, made.text
    again = client.post("/api/v1/checklist-templates/standard")
    assert again.status_code == 200  # pressed twice: one template
    assert again.json()["id"] == made.json()["id"]
    tpl = made.json()
    assert tpl["kind"] == "routine"
    assert len(tpl["items"]) == 15
    assert all(i["text_zh"] and i["text_en"] and i["rule"] is None for i in tpl["items"])
    assert {i["tier"] for i in tpl["items"]} == {1, 2, 3}
    cold = next(i for i in tpl["items"] if "冷藏" in i["text_zh"] and i["tier"] == 1)
    body = {
        "site_id": "school-001",
        "kind": "routine",
        "template_id": tpl["id"],
        "inspectors": ["张检查"],
        "started_at": T0.isoformat(),
        "items": [
            {"code": i["code"], "result": "fail" if i is cold else "pass", "note": ""}
            for i in tpl["items"]
        ],
    }
    r = client.post("/api/v1/inspections", json=body)
    assert r.status_code == 201, r.text
    assert process_findings(conn, now=utcnow(), settings=app_settings) == 1
    item = next(i for i in client.get(f"/api/v1/inspections/{r.json()['id']}").json()["items"]
                if i["code"] == cold["code"])  # fmt: skip
    ticket = client.get(f"/api/v1/tickets/{item['ticket_id']}").json()
    assert ticket["tier"] == 1
    assert ticket["title"] == (
        f"监督检查不合格（{cold['code']}） inspection item {cold['code']} failed: {cold['text_zh']}"
    )
