"""Ticket comments over HTTP: who may comment, the text rules, and the timeline entry."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.api.loop_support import loop_client, loop_registry, loop_settings, tid, who

__all__ = ["loop_client", "loop_registry", "loop_settings", "tid", "who"]

H = dict[str, dict[str, str]]


def test_comment_per_role_lands_in_the_timeline(
    loop_client: TestClient, who: H, tid: int, conn: psycopg.Connection[Any]
) -> None:
    c = loop_client
    url = f"/api/v1/tickets/{tid}/comments"
    assert c.post(url, json={"text": "x"}).status_code == 401
    assert c.post(url, headers=who["insurer"], json={"text": "x"}).status_code == 403
    assert c.post(url, headers=who["stranger"], json={"text": "x"}).status_code == 404
    assert c.post("/api/v1/tickets/999999/comments", headers=who["admin"],
                  json={"text": "x"}).status_code == 404  # fmt: skip
    status_before = c.get(f"/api/v1/tickets/{tid}", headers=who["admin"]).json()["status"]
    for role in ("officer", "director", "regulator", "admin"):
        r = c.post(url, headers=who[role], json={"text": f"  note from {role}  "})
        assert r.status_code == 201, (role, r.text)
        ev = r.json()
        assert (ev["kind"], ev["note"]) == ("comment", f"note from {role}")
        assert ev["data"]["role"] == role
    ticket = c.get(f"/api/v1/tickets/{tid}", headers=who["insurer"]).json()
    comments = [(e["actor"], e["note"]) for e in ticket["events"] if e["kind"] == "comment"]
    assert comments == [
        ("wang", "note from officer"),
        ("li", "note from director"),
        ("zhang", "note from regulator"),
        ("root", "note from admin"),
    ]
    assert ticket["status"] == status_before  # a comment changes no state
    (n,) = conn.execute(
        "SELECT count(*) FROM notifications WHERE body LIKE '%%note from%%'"
    ).fetchone() or (0,)
    assert n == 0  # and sends no notice


def test_comment_text_rules_name_the_field(loop_client: TestClient, who: H, tid: int) -> None:
    url = f"/api/v1/tickets/{tid}/comments"
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "body.text"),
        ({"text": ""}, "body.text"),
        ({"text": "   "}, "body.text"),
        ({"text": "x" * 2001}, "body.text"),
        ({"text": "a", "x": 1}, "body.x"),
    ]
    for body, field in cases:
        r = loop_client.post(url, headers=who["officer"], json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"].startswith(f"{field}:"), r.text
    ok = loop_client.post(url, headers=who["officer"], json={"text": "字" * 2000})
    assert ok.status_code == 201
    assert len(ok.json()["note"]) == 2000
