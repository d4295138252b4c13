"""Seed the demo's manual workflows through the HTTP API: a rapid test, a visit, a complaint.

Sensors speak MQTT; these workflows are people with a phone or a lab instrument, so the
demo plays them the way those people would: the canteen records a delivery (进货查验) and
its failed pesticide test (快检), which opens a 快检不合格 ticket through the ticket
engine; the 包保 cadre records a supervision visit whose one "no" becomes a ticket too;
and a parent files a complaint on the canteen's public page (百姓点检), which
waits in the regulator's triage and gets a tracking code. Everything goes through the same
routes and checks as a real client: nothing is written to the database directly.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bkcommon.localtime import local_date

SUPPLIER_LICENCE = "JY13301060000001"
SAMPLE_NO = "DEMO-S-001"


@dataclass(frozen=True, slots=True)
class SeededWorkflows:
    """What the demo seeded: the failed test's id and the complaint's tracking page."""

    rapid_test_id: int
    visit_id: int
    tracking_url: str
    checklist_id: int


def _call(base: str, token: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(  # noqa: S310 (the demo's own API on localhost)
        f"{base}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return dict(json.loads(resp.read()))


def seed_workflows(
    base: str, token: str, *, site_id: str, region_id: str, now: datetime
) -> SeededWorkflows:
    """Record a delivery and its failed rapid test, a cadre's visit, one public complaint,
    and the standard inspection checklist (once).

    ``token`` is an admin's (the demo's); the complaint is anonymous like the public's.
    Re-running against the same database (``--keep-data``) records the delivery and the
    test once (409, then 200: recorded before); the visit and the complaint are new each
    run, as another visit and another parent would be.
    """
    try:
        purchase = _call(
            base, token, "POST", "/api/v1/purchases",
            {
                "site_id": site_id,
                "supplier_name": "绿源蔬菜配送 (demo supplier)",
                "supplier_licence": SUPPLIER_LICENCE,
                "product": "青菜",
                "batch_no": f"B-{now:%m%d}",
                "delivered_on": local_date(now).isoformat(),
                "quantity": "25",
                "received_by": "demo receiver",
            },
        )  # fmt: skip
        purchase_id: int | None = int(purchase["id"])
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise
        purchase_id = None  # recorded by an earlier run: the test names the supplier instead
    test = _call(
        base, token, "POST", "/api/v1/rapid-tests",
        {
            "site_id": site_id,
            "sample_no": SAMPLE_NO,
            "purchase_id": purchase_id,
            "product": "青菜",
            "supplier_licence": None if purchase_id else SUPPLIER_LICENCE,
            "item": "pesticide_enzyme",
            "method": "酶抑制率法 GB/T 5009.199",
            "result": "fail",
            "value": 62.5,
            "limit": 50,
            "unit": "%",
            "tester": "demo lab",
            "tested_at": now.isoformat(),
        },
    )  # fmt: skip
    visit = _call(
        base, token, "POST", "/api/v1/supervision/visits",
        {
            "site_id": site_id,
            "visited_at": now.replace(microsecond=0).isoformat(),
            "checklist": [
                {"item": "食品安全总监、食品安全员在岗", "ok": True},
                {"item": "进货查验记录完整", "ok": True},
                {"item": "留样 ≥125 g、冷藏 48 h", "ok": False, "note": "午餐留样缺青菜"},
            ],
            "note": "demo 包保 visit",
        },
    )  # fmt: skip
    _call(base, token, "PUT", f"/api/v1/publication/{region_id}", {"enabled": True})
    form = urllib.parse.urlencode(
        {"body": "午餐的青菜有异味 (demo complaint: the greens at lunch smelled off)"}
    ).encode()
    req = urllib.request.Request(  # noqa: S310 (the demo's own API on localhost)
        f"{base}/public/canteens/{site_id}/complaints",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (follows the 303)
        tracking_url = str(resp.geturl())
    # the standard inspection checklist, so that the demo's inspector can record one
    checklist = _call(base, token, "POST", "/api/v1/checklist-templates/standard", {})
    return SeededWorkflows(
        rapid_test_id=int(test["id"]),
        visit_id=int(visit["id"]),
        tracking_url=tracking_url,
        checklist_id=int(checklist["id"]),
    )
