"""The ticket life over HTTP: roles, 409 messages, multipart rectification, manual tickets."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.loop_support import (
    jpeg_bytes,
    loop_client,
    loop_registry,
    loop_settings,
    png_bytes,
    tid,
    who,
)

__all__ = ["loop_client", "loop_registry", "loop_settings", "tid", "who"]

H = dict[str, dict[str, str]]


def test_whole_life_over_http(loop_client: TestClient, who: H, tid: int) -> None:
    c = loop_client
    base = f"/api/v1/tickets/{tid}"
    assert c.post(f"{base}/acknowledge").status_code == 401
    # confirm_close only once the data has proposed the close
    assert c.get(base, headers=who["officer"]).json()["close_confirmable_at"] is None
    assert c.get(f"{base}/actions", headers=who["officer"]).json() == ["acknowledge", "rectify"]
    r = c.post(f"{base}/acknowledge", headers=who["officer"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"
    assert r.json()["allowed_actions"] == ["rectify"]

    again = c.post(f"{base}/acknowledge", headers=who["officer"])
    assert again.status_code == 409
    assert "allowed from acknowledged: rectify" in again.json()["detail"]
    assert c.post(f"{base}/acknowledge", headers=who["insurer"]).status_code in (403, 404)
    assert c.post(f"{base}/acknowledge", headers=who["stranger"]).status_code == 404

    no_photo = c.post(f"{base}/rectify", headers=who["officer"], data={"note": "fixed"})
    assert no_photo.status_code == 422
    assert "photo" in no_photo.json()["detail"]
    r = c.post(
        f"{base}/rectify",
        headers=who["officer"],
        data={"note": "compressor repaired"},
        files=[
            ("photos", ("a.jpg", jpeg_bytes(seed=3), "image/jpeg")),
            ("photos", ("b.png", png_bytes(), "image/png")),
        ],
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rectified"
    files = c.get(f"{base}/evidence", headers=who["director"]).json()
    assert [(f["filename"], f["media_type"]) for f in files] == [
        ("a.jpg", "image/jpeg"), ("b.png", "image/png"),
    ]  # fmt: skip
    assert all(f["event_id"] == r.json()["event_id"] for f in files)

    forbidden = c.post(f"{base}/verify", headers=who["officer"])
    assert forbidden.status_code == 403
    assert "director" in forbidden.json()["detail"]
    assert c.post(f"{base}/reject", headers=who["director"], json={}).status_code == 422
    r = c.post(f"{base}/reject", headers=who["director"], json={"note": "still warm"})
    assert r.json()["status"] == "rejected"

    up = c.post(
        f"{base}/evidence",
        headers=who["officer"],
        files={"file": ("thermo.jpg", jpeg_bytes(seed=9), "image/jpeg")},
    )
    assert up.status_code == 201, up.text
    sha = up.json()["sha256"]
    r = c.post(
        f"{base}/rectify", headers=who["officer"], data={"note": "new seal", "evidence": [sha]}
    )
    assert r.json()["status"] == "rectified", r.text
    assert c.post(f"{base}/verify", headers=who["regulator"]).json()["status"] == "closed"
    r = c.post(f"{base}/reopen", headers=who["regulator"], json={"note": "spot check failed"})
    assert r.json()["status"] == "open"

    detail = c.get(base, headers=who["officer"]).json()
    assert [e["kind"] for e in detail["events"]] == [
        "opened", "acknowledged", "rectified", "rejected", "rectified", "verified", "reopened",
    ]  # fmt: skip
    assert [e["actor"] for e in detail["events"]][1:4] == ["wang", "wang", "li"]
    assert detail["events"][3]["note"] == "still warm"


def test_manual_ticket_over_http(loop_client: TestClient, who: H) -> None:
    body = {"site_id": "school-001", "rule": "bin_uncovered", "subject": "后门", "tier": 2}
    r = loop_client.post("/api/v1/tickets", headers=who["regulator"], json=body)
    assert r.status_code == 201, r.text
    assert r.json()["opened"] is True
    again = loop_client.post("/api/v1/tickets", headers=who["officer"], json=body)
    assert again.json() == {"ticket_id": r.json()["ticket_id"], "opened": False}
    other = {**body, "site_id": "school-002"}
    assert (
        loop_client.post("/api/v1/tickets", headers=who["officer"], json=other).status_code == 404
    )
    assert loop_client.post("/api/v1/tickets", headers=who["insurer"], json=body).status_code == 403
    bad = {**body, "rule": "Bad Rule!"}
    assert loop_client.post("/api/v1/tickets", headers=who["admin"], json=bad).status_code == 422
