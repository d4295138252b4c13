"""Capture triage: direct vs review mode, confirm / dismiss, false-alarm rates, VOC export."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api.services.tickets import process_findings
from api.services.triage import set_triage_mode, triage_mode
from api.settings import ApiSettings
from bkcommon.localtime import region_zone
from bkcommon.timeutil import utcnow
from tests.api.conftest import T0, insert_finding
from tests.api.loop_support import jpeg_bytes, loop_client, loop_registry, loop_settings, who

__all__ = ["loop_client", "loop_registry", "loop_settings", "who"]

pytestmark = pytest.mark.usefixtures("loop_registry")

H = dict[str, dict[str, str]]


def _capture(
    conn: psycopg.Connection[Any],
    n: int,
    *,
    rule: str = "no_mask",
    camera: str = "cam-1",
    model: str = "yolo-v1",
) -> str:
    """A violation as ingest stores it: snapshot blob, violation row, finding with boxes."""
    snap = jpeg_bytes(320, 240, seed=n)
    sha = hashlib.sha256(snap).hexdigest()
    event_id = f"evt-{n:08d}"
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s) "
        "ON CONFLICT DO NOTHING",
        (sha, snap),
    )
    conn.execute(
        """INSERT INTO violations (event_id, site_id, box_id, camera_id, rule, started_at,
                                   confidence, model_version, evidence_sha256)
           VALUES (%s, 'school-001', 'box-1', %s, %s, %s, 0.8, %s, %s)""",
        (event_id, camera, rule, T0, model, sha),
    )
    payload = {
        "event_id": event_id,
        "camera_id": camera,
        "rule": rule,
        "model_version": model,
        "evidence_sha256": sha,
        "evidence": {
            "sha256": sha, "width_px": 320, "height_px": 240,
            "boxes": [{"x1": 10.4, "y1": 20, "x2": 110, "y2": 400, "label": "head",
                       "confidence": 0.8}],
        },
    }  # fmt: skip
    insert_finding(
        conn, key=f"violation:{event_id}", kind="violation", subject=camera, rule=rule,
        payload=Jsonb(payload).obj, notify=False,
    )  # fmt: skip
    return event_id


def test_mode_resolution(conn: psycopg.Connection[Any]) -> None:
    assert triage_mode(conn, camera_id="cam-1", rule="pest", default="direct") == "direct"
    set_triage_mode(conn, mode="review", rule="pest", camera_id=None)
    assert triage_mode(conn, camera_id="cam-1", rule="pest", default="direct") == "review"
    set_triage_mode(conn, mode="direct", rule="pest", camera_id="cam-1")
    assert triage_mode(conn, camera_id="cam-1", rule="pest", default="review") == "direct"
    assert triage_mode(conn, camera_id="cam-2", rule="pest", default="direct") == "review"
    set_triage_mode(conn, mode="review", camera_id="cam-9", rule=None)
    assert triage_mode(conn, camera_id="cam-9", rule="no_mask", default="direct") == "review"
    with pytest.raises(ValueError, match="camera or a rule"):
        set_triage_mode(conn, mode="review", camera_id=None, rule=None)


def test_direct_mode_opens_tickets_and_review_mode_waits(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    _capture(conn, 1, rule="smoking")
    set_triage_mode(conn, mode="review", rule="no_mask", camera_id=None)
    _capture(conn, 2)
    _capture(conn, 3)
    assert process_findings(conn, now=T0, settings=loop_settings) == 3
    tickets = conn.execute("SELECT rule FROM tickets").fetchall()
    assert tickets == [("smoking",)]
    reviews = conn.execute(
        "SELECT event_id, status, evidence_sha256 IS NOT NULL FROM capture_reviews ORDER BY id"
    ).fetchall()
    assert reviews == [("evt-00000002", "pending", True), ("evt-00000003", "pending", True)]
    done = conn.execute(
        "SELECT count(*) FROM findings WHERE processed_at IS NULL OR error IS NOT NULL"
    ).fetchone()
    assert done == (0,)


def test_review_queue_over_http(
    loop_client: TestClient, who: H, conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    set_triage_mode(conn, mode="review", rule="no_mask", camera_id=None)
    set_triage_mode(conn, mode="review", rule="pest", camera_id=None)
    for n, (rule, model) in enumerate(
        [("no_mask", "yolo-v1"), ("no_mask", "yolo-v1"), ("no_mask", "yolo-v2"),
         ("pest", "yolo-v2")],
        start=1,
    ):  # fmt: skip
        _capture(conn, n, rule=rule, model=model)
    process_findings(conn, now=utcnow(), settings=loop_settings)
    c = loop_client
    pending = c.get("/api/v1/reviews", params={"status": "pending"}, headers=who["officer"])
    assert pending.status_code == 200
    ids = [r["id"] for r in pending.json()["data"]]
    assert len(ids) == 4
    assert c.get("/api/v1/reviews", headers=who["stranger"]).json()["count"] == 0
    assert c.post(f"/api/v1/reviews/{ids[0]}/confirm", headers=who["stranger"]).status_code == 404
    assert c.post(f"/api/v1/reviews/{ids[0]}/confirm", headers=who["insurer"]).status_code == 403

    r = c.post(f"/api/v1/reviews/{ids[0]}/confirm", headers=who["officer"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    ticket_id = r.json()["ticket_id"]
    ticket = c.get(f"/api/v1/tickets/{ticket_id}", headers=who["officer"]).json()
    assert ticket["source"] == "violation"
    assert [e["kind"] for e in ticket["events"]] == ["opened", "capture_confirmed"]
    assert c.post(f"/api/v1/reviews/{ids[0]}/confirm", headers=who["officer"]).status_code == 409

    empty = c.post(f"/api/v1/reviews/{ids[1]}/dismiss", headers=who["officer"], json={"reason": ""})
    assert empty.status_code == 422
    for rid, reason in ((ids[1], "reflection on the steel hood"), (ids[3], "it was a cat")):
        r = c.post(
            f"/api/v1/reviews/{rid}/dismiss", headers=who["director"], json={"reason": reason}
        )
        assert r.json()["status"] == "dismissed"
        assert r.json()["reason"] == reason
    assert c.post(f"/api/v1/reviews/{ids[1]}/confirm", headers=who["officer"]).status_code == 409
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM capture_reviews")

    stats = c.get("/api/v1/reviews/stats", headers=who["regulator"]).json()
    by_rule = {g["key"]: g for g in stats["by_rule"]}
    assert (by_rule["no_mask"]["confirmed"], by_rule["no_mask"]["dismissed"]) == (1, 1)
    assert by_rule["no_mask"]["pending"] == 1
    assert by_rule["no_mask"]["false_alarm_rate"] == 0.5
    assert by_rule["pest"]["false_alarm_rate"] == 1.0
    by_model = {g["key"]: g["false_alarm_rate"] for g in stats["by_model_version"]}
    assert by_model == {"yolo-v1": 0.5, "yolo-v2": 1.0}
    assert [g["key"] for g in stats["by_camera"]] == ["cam-1"]

    start = (utcnow() - timedelta(hours=1)).isoformat()
    end = (utcnow() + timedelta(hours=1)).isoformat()
    z = c.get(
        "/api/v1/reviews/export.zip", params={"from": start, "to": end}, headers=who["officer"]
    )
    assert z.status_code == 200, z.text
    assert z.headers["content-type"] == "application/zip"
    local = utcnow().astimezone(region_zone())  # the file is named by the region's dates
    assert f"captures-{(local - timedelta(hours=1)):%Y%m%d}-" in z.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = sorted(zf.namelist())
        assert names == sorted(
            [
                "JPEGImages/evt-00000001.jpg", "JPEGImages/evt-00000002.jpg",
                "JPEGImages/evt-00000004.jpg", "Annotations/evt-00000001.xml",
                "Annotations/evt-00000002.xml", "Annotations/evt-00000004.xml",
                "ImageSets/Main/confirmed.txt", "ImageSets/Main/dismissed.txt", "labels.txt",
            ]
        )  # fmt: skip
        assert zf.read("ImageSets/Main/confirmed.txt") == b"evt-00000001\n"
        assert zf.read("ImageSets/Main/dismissed.txt") == b"evt-00000002\nevt-00000004\n"
        assert zf.read("JPEGImages/evt-00000001.jpg") == jpeg_bytes(320, 240, seed=1)
        ann = ET.fromstring(zf.read("Annotations/evt-00000004.xml"))
        assert ann.findtext("filename") == "evt-00000004.jpg"
        assert (ann.findtext("size/width"), ann.findtext("size/height")) == ("320", "240")
        assert ann.findtext("review") == "dismissed"
        assert ann.findtext("review_reason") == "it was a cat"
        obj = ann.find("object")
        assert obj is not None
        # not "head" (it was a cat): a dismissed box is for a person to name, never a label
        assert obj.findtext("name") == "needs_label"
        assert obj.findtext("model_label") == "head"
        box = [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
        assert box == ["10", "20", "110", "240"]  # clipped to the image
    other = c.get("/api/v1/reviews/export.zip", params={"from": start, "to": end},
                  headers=who["stranger"])  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(other.content)) as zf:
        assert not [n for n in zf.namelist() if n.startswith("JPEGImages/")]
    bad = c.get("/api/v1/reviews/export.zip", params={"from": end, "to": start},
                headers=who["officer"])  # fmt: skip
    assert bad.status_code == 422


def test_review_default_from_settings(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    s = ApiSettings(**{**loop_settings.model_dump(), "triage_default": "review"})
    _capture(conn, 1)
    insert_finding(conn, key="alarm:x:raised", notify=False)  # sensors never wait for review
    process_findings(conn, now=T0, settings=s)
    assert conn.execute("SELECT source FROM tickets").fetchall() == [("alarm",)]
    assert conn.execute("SELECT status FROM capture_reviews").fetchall() == [("pending",)]
